"""A period's token events as stored rows: read for an archive, written back from one.

Both read and write the rows as they are (no mapper): an archive must hold the bytes the
ledger's leaves were computed from, and a loaded archive must put back exactly those bytes
at exactly their positions, so the ledger still verifies and followers that are past them
(the relay, projections) never see them twice.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any
from uuid import UUID

from eventsourcing.utils import get_topic
from psycopg.rows import tuple_row

from adapters.compact_events import stored_topics
from adapters.token_archives import Row
from domain.token import IssuedToken
from domain.token_periods import TokenPeriod

TOKEN_EVENT_TOPICS = (*stored_topics(IssuedToken.Issued), get_topic(IssuedToken.Revoked))
_BATCH = 5_000


class PositionTaken(Exception):
    """A row to restore whose position holds another event in the store."""


class TokenEventRows:
    """The token events of the store behind `datastore` (`Ledger.datastore`)."""

    def __init__(self, datastore: Any, *, postgres: bool, events_table: str) -> None:
        self._datastore = datastore
        self._postgres = postgres
        self._events = events_table

    def period(self, period: TokenPeriod, batch: int = _BATCH) -> Iterator[Row]:
        """The period's token events in token id and version order, read in batches."""
        low, high = period.id_range()
        after: tuple[Any, int] = (self._id(low), 0)
        first = True
        while True:
            rows = self._batch(after, self._id(high), batch, inclusive=first)
            first = False
            for row in rows:
                token_id = row[1] if isinstance(row[1], UUID) else UUID(row[1])
                if row[3] in TOKEN_EVENT_TOPICS and period.holds(token_id):
                    yield row[0], token_id, row[2], row[3], row[4]
            if len(rows) < batch:
                return
            after = (rows[-1][1], rows[-1][2])

    def _id(self, value: UUID) -> Any:
        return value if self._postgres else value.hex  # how eventsourcing's SQLite stores it

    def _batch(
        self, after: tuple[Any, int], high: Any, limit: int, *, inclusive: bool
    ) -> list[tuple[int, Any, int, str, bytes]]:
        position = "notification_id" if self._postgres else "rowid"
        comparison = ">=" if inclusive else ">"
        statement = (
            f"SELECT {position}, originator_id, originator_version, topic, state "  # noqa: S608
            f"FROM {self._events} WHERE (originator_id, originator_version) {comparison} (?, ?) "
            "AND originator_id < ? ORDER BY originator_id, originator_version LIMIT ?"
        )
        if self._postgres:
            statement = statement.replace("?", "%s")
        with self._datastore.transaction(commit=False) as curs:
            if self._postgres:
                curs.row_factory = tuple_row
            curs.execute(statement, (*after, high, limit))
            rows = curs.fetchall()
        return [(int(r[0]), r[1], int(r[2]), str(r[3]), bytes(r[4] or b"")) for r in rows]

    def restore(self, rows: Iterable[Row]) -> tuple[int, int]:
        """Put archived rows back at their positions: (restored, already there). A position
        holding another event stops it (`PositionTaken`), and nothing of that batch is
        written."""
        restored = present = 0
        batch: list[Row] = []
        for row in rows:
            batch.append(row)
            if len(batch) == _BATCH:
                counts = self._restore(batch)
                restored, present = restored + counts[0], present + counts[1]
                batch = []
        if batch:
            counts = self._restore(batch)
            restored, present = restored + counts[0], present + counts[1]
        return restored, present

    def _restore(self, rows: list[Row]) -> tuple[int, int]:
        position = "notification_id" if self._postgres else "rowid"
        select = (
            f"SELECT originator_id, originator_version FROM {self._events} "  # noqa: S608
            f"WHERE {position} = ?"
        )
        insert = (
            f"INSERT INTO {self._events} "  # noqa: S608
            f"({position}, originator_id, originator_version, topic, state) "
            "VALUES (?, ?, ?, ?, ?)"
        )
        if self._postgres:
            select, insert = select.replace("?", "%s"), insert.replace("?", "%s")
        restored = present = 0
        with self._datastore.transaction(commit=True) as curs:
            if self._postgres:
                curs.row_factory = tuple_row
            for at, token_id, version, topic, state in rows:
                curs.execute(select, (at,))
                found = curs.fetchone()
                if found is not None:
                    held = (str(UUID(str(found[0]))), int(found[1]))
                    if held != (str(token_id), version):
                        raise PositionTaken(
                            f"position {at} holds event {held[1]} of {held[0]}, not "
                            f"event {version} of token {token_id}"
                        )
                    present += 1
                    continue
                curs.execute(insert, (at, self._id(token_id), version, topic, state))
                restored += 1
        return restored, present
