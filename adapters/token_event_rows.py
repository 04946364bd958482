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
from domain.token_periods import TokenPeriod, issued_period
from domain.token_retention import ArchiveMismatch

TOKEN_EVENT_TOPICS = (*stored_topics(IssuedToken.Issued), get_topic(IssuedToken.Revoked))
# The partition an event belongs to in a partitioned PostgreSQL store, from its topic and id:
# 1, a token with a UUIDv7 id (by month); 2, an older token; 0, every other event.
_TOPIC_LIST = ", ".join("'" + t.replace("'", "''") + "'" for t in TOKEN_EVENT_TOPICS)


def kind_sql(originator_id: str, topic: str) -> str:
    """The SQL expression of an event's kind (for the append function and restores)."""
    return (
        f"CASE WHEN {topic} = ANY (ARRAY[{_TOPIC_LIST}]) THEN "
        f"CASE WHEN get_byte(uuid_send({originator_id}), 6) >> 4 = 7 THEN 1 ELSE 2 END "
        "ELSE 0 END"
    )


_BATCH = 5_000


class PositionTaken(Exception):
    """A row to restore whose position holds another event in the store."""


class SingleTable(Exception):
    """A PostgreSQL store created before partitioning: its token events cannot leave it
    without a DELETE that bloats the live table."""


class TokenEventRows:
    """The token events of the store behind `datastore` (`Ledger.datastore`)."""

    topics = TOKEN_EVENT_TOPICS

    def __init__(self, datastore: Any, *, postgres: bool, events_table: str) -> None:
        self._datastore = datastore
        self._postgres = postgres
        self._events = events_table
        self._schema = getattr(datastore, "schema", "") or "public"

    def partitioned(self) -> bool:
        """Whether the store's events table is partitioned (always false for SQLite)."""
        if not self._postgres:
            return False
        with self._datastore.transaction(commit=False) as curs:
            curs.row_factory = tuple_row
            curs.execute(
                "SELECT c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = %s AND c.relname = %s",
                (self._schema, self._events),
            )
            found = curs.fetchone()
        return found is not None and found[0] == "p"

    def first_period(self) -> TokenPeriod | None:
        """The period of the oldest UUIDv7 token still in the store; None when there is none."""
        low = TokenPeriod(1970, 1).id_range()[0]
        after: tuple[Any, int] = (self._id(low), 0)
        while rows := self._batch(after, self._id(UUID(int=(1 << 128) - 1)), 200, inclusive=False):
            for row in rows:
                token_id = row[1] if isinstance(row[1], UUID) else UUID(row[1])
                if row[3] in TOKEN_EVENT_TOPICS and token_id.version == 7:
                    return issued_period(token_id)
            after = (rows[-1][1], rows[-1][2])
        return None

    def prepare_months(self, first: TokenPeriod) -> None:
        """The month tables from `first` on, a year ahead (partitioned PostgreSQL only)."""
        if not self._postgres or not self.partitioned():
            return
        from adapters.postgres_recorder import ensure_token_months

        with self._datastore.transaction(commit=True) as curs:
            ensure_token_months(curs, self._schema, self._events, first)

    def remove(self, period: TokenPeriod, expected: int, upto: int, batch: int = _BATCH) -> int:
        """Remove the period's token events (of which `expected` were archived, the last at
        position `upto`): its month table dropped whole when it has one, then any left
        elsewhere (the default table of a partitioned store, a SQLite store) in bounded
        batches, never one above `upto` (it came after the archive: it is in no archive).
        Refuses, removing nothing, when the month table holds events the archive does not.
        The number removed."""
        removed = 0
        if self._postgres:
            if not self.partitioned():
                raise SingleTable(
                    "this PostgreSQL store was created before token events were partitioned: "
                    "its token events cannot leave without a DELETE that bloats the table"
                )
            removed = self._drop_month(period, expected, upto)
        while count := self._delete_batch(period, batch, upto):
            removed += count
        return removed

    def _drop_month(self, period: TokenPeriod, expected: int, upto: int) -> int:
        from psycopg.sql import SQL, Identifier

        from adapters.postgres_recorder import month_table

        table = Identifier(self._schema, month_table(self._events, period))
        with self._datastore.transaction(commit=True) as curs:
            curs.row_factory = tuple_row
            curs.execute(
                "SELECT to_regclass(%s)", (f"{self._schema}.{month_table(self._events, period)}",)
            )
            row = curs.fetchone()
            if row is None or row[0] is None:
                return 0
            curs.execute("SET LOCAL lock_timeout = '10s'")
            # In the order writers and readers take them, root first, or a writer holding the
            # root and waiting for this month deadlocks with this drop waiting for the root:
            # the writers' lock (no append meanwhile), then every token table (readers done).
            curs.execute(
                SQL("LOCK TABLE {} IN EXCLUSIVE MODE").format(
                    Identifier(self._schema, self._events)
                )
            )
            curs.execute(
                SQL("LOCK TABLE {} IN ACCESS EXCLUSIVE MODE").format(
                    Identifier(self._schema, f"{self._events}_tokens")
                )
            )
            curs.execute(
                SQL("SELECT count(*), count(*) FILTER (WHERE notification_id > %s) FROM {}").format(
                    table
                ),
                (upto,),
            )
            counted = curs.fetchone()
            held, later = (int(counted[0]), int(counted[1])) if counted else (0, 0)
            if held > expected or later:
                raise ArchiveMismatch(
                    f"{period}'s table holds {held} events ({later} after position {upto}, "
                    f"the archive's last), the archive {expected}: nothing removed"
                )
            curs.execute(SQL("DROP TABLE {}").format(table))
        return held

    def _delete_batch(self, period: TokenPeriod, limit: int, upto: int) -> int:
        """Up to `limit` of the period's token events at positions up to `upto` outside a
        month table: in a partitioned store, those in the default table (a month that got no
        table of its own)."""
        low, high = period.id_range()
        topics = ", ".join("?" for _ in TOKEN_EVENT_TOPICS)
        if self._postgres:
            table = f"{self._events}_tokens_default"
            statement = (
                f"DELETE FROM {table} WHERE ctid IN (SELECT ctid FROM {table} "  # noqa: S608
                f"WHERE originator_id >= ? AND originator_id < ? AND topic IN ({topics}) "
                "AND notification_id <= ? LIMIT ?)"
            ).replace("?", "%s")
            params: tuple[Any, ...] = (low, high, *TOKEN_EVENT_TOPICS, upto, limit)
        else:
            statement = (
                f"DELETE FROM {self._events} WHERE rowid IN (SELECT rowid FROM {self._events} "  # noqa: S608
                "WHERE originator_id >= ? AND originator_id < ? "
                f"AND substr(originator_id, 13, 1) = '7' AND topic IN ({topics}) "
                "AND rowid <= ? LIMIT ?)"
            )
            params = (low.hex, high.hex, *TOKEN_EVENT_TOPICS, upto, limit)
        with self._datastore.transaction(commit=True) as curs:
            curs.execute(statement, params)
            cursor = getattr(curs, "sqlite_cursor", curs)  # eventsourcing wraps SQLite's
            return int(cursor.rowcount or 0)

    def period(self, period: TokenPeriod, batch: int = _BATCH) -> Iterator[Row]:
        """The period's token events in position order (the order followers read them in),
        read in batches."""
        low, high = period.id_range()
        after = 0
        while True:
            rows = self._positions(after, self._id(low), self._id(high), batch)
            for row in rows:
                token_id = row[1] if isinstance(row[1], UUID) else UUID(row[1])
                if row[3] in TOKEN_EVENT_TOPICS and period.holds(token_id):
                    yield row[0], token_id, row[2], row[3], row[4]
            if len(rows) < batch:
                return
            after = rows[-1][0]

    def _positions(
        self, after: int, low: Any, high: Any, limit: int
    ) -> list[tuple[int, Any, int, str, bytes]]:
        """Up to `limit` events with ids in [low, high), after position `after`."""
        position = "notification_id" if self._postgres else "rowid"
        statement = (
            f"SELECT {position}, originator_id, originator_version, topic, state "  # noqa: S608
            f"FROM {self._events} WHERE {position} > ? AND originator_id >= ? "
            f"AND originator_id < ? ORDER BY {position} LIMIT ?"
        )
        if self._postgres:
            statement = statement.replace("?", "%s")
            if self.partitioned():  # only the token partitions: the others hold no token
                statement = statement.replace("ORDER BY", "AND kind = 1 ORDER BY")
        with self._datastore.transaction(commit=False) as curs:
            if self._postgres:
                curs.row_factory = tuple_row
            curs.execute(statement, (after, low, high, limit))
            rows = curs.fetchall()
        return [(int(r[0]), r[1], int(r[2]), str(r[3]), bytes(r[4] or b"")) for r in rows]

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
            f"SELECT originator_id, originator_version, topic, state FROM {self._events} "  # noqa: S608
            f"WHERE {position} = ?"
        )
        insert = (
            f"INSERT INTO {self._events} "  # noqa: S608
            f"({position}, originator_id, originator_version, topic, state) "
            "VALUES (?, ?, ?, ?, ?)"
        )
        if self._postgres:
            select, insert = select.replace("?", "%s"), insert.replace("?", "%s")
            if self.partitioned():
                insert = insert.replace(", state)", ", state, kind)").replace(
                    "%s, %s)", f"%s, %s, {kind_sql('%s::uuid', '%s::text')})"
                )
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
                    if (str(found[2]), bytes(found[3] or b"")) != (topic, state):
                        raise PositionTaken(
                            f"position {at} holds event {version} of token {token_id} with "
                            "other contents than the archive's"
                        )
                    present += 1
                    continue
                values: tuple[Any, ...] = (at, self._id(token_id), version, topic, state)
                if "kind" in insert:
                    values = (*values, topic, token_id)  # in the order kind_sql uses them
                curs.execute(insert, values)
                restored += 1
        return restored, present
