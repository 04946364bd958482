"""Tables for replaying a projection: a fresh table swapped in atomically, and named
point-in-time copies.

The swap takes the projection's tracking row (`FOR UPDATE`) and then the live table
(`ACCESS EXCLUSIVE`): the same order a serving process's write takes them, so the two queue
instead of deadlocking. Inside that transaction it folds the last events committed since the
replay, drops the live table, renames the fresh one into its place and sets the tracking
position to the head it read, all or nothing. On SQLite the transaction holds the database's
one write lock, which gives the same.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from eventsourcing.persistence import Notification
from eventsourcing.postgres import PostgresDatastore
from psycopg.sql import SQL, Composable, Identifier

from adapters.projection_tables import TRACKING_TABLE, UPSERT, row_columns

Row = tuple[str, str, str]  # key, status, record (JSON)
Fold = Callable[[Sequence[Notification]], Sequence[Row]]

_COPIES = (
    "CREATE TABLE IF NOT EXISTS keyledger_projection_copies ("
    "name text PRIMARY KEY, projection text NOT NULL, table_name text NOT NULL, "
    "until_time text NOT NULL, position bigint NOT NULL, records bigint NOT NULL, "
    "created_at text NOT NULL)"
)


class RebuildTables:
    """Dialect-specific SQL for the rebuild and the copies, beside the event store."""

    def __init__(self, ledger: Any) -> None:
        self.datastore = ledger.datastore
        self.recorder = ledger.recorder
        self.postgres = isinstance(self.datastore, PostgresDatastore)
        self.mark = "%s" if self.postgres else "?"

    def _table(self, name: str) -> Composable | str:
        if self.postgres:
            return Identifier(self.datastore.schema, name)
        return '"' + name.replace('"', "") + '"'

    def _sql(self, template: str, *tables: str) -> Any:
        """`template` with `{0}`, `{1}` ... as table names and `%s` as the parameter mark."""
        names = [self._table(t) for t in tables]
        if self.postgres:
            return SQL(template).format(*names)
        return template.replace("%s", "?").format(*names)

    def create_fresh(self, table: str) -> None:
        with self.datastore.transaction(commit=True) as curs:
            curs.execute(self._sql("DROP TABLE IF EXISTS {0}", table))
            curs.execute(self._sql("CREATE TABLE {0} " + row_columns(self.postgres), table))

    def insert(self, table: str, rows: Sequence[Row]) -> None:
        """Rows into a fresh table (PostgreSQL: COPY, several times faster than INSERTs)."""
        with self.datastore.transaction(commit=True) as curs:
            if not self.postgres:
                curs.executemany(self._sql(_UPSERT, table), rows)
                return
            statement = SQL("COPY {0} (key, status, record) FROM STDIN").format(self._table(table))
            with curs.copy(statement) as copy:
                for row in rows:
                    copy.write_row(row)

    def rows(self, table: str) -> list[str]:
        """The `record` column of every row (JSON for the projection's codec)."""
        with self.datastore.transaction(commit=False) as curs:
            curs.execute(self._sql("SELECT record FROM {0} ORDER BY key", table))
            return [r["record"] for r in curs.fetchall()]

    def drop(self, table: str) -> None:
        with self.datastore.transaction(commit=True) as curs:
            curs.execute(self._sql("DROP TABLE IF EXISTS {0}", table))

    def swap(
        self, live: str, fresh: str, tracking: str, after: int, topics: Sequence[str], fold: Fold
    ) -> int:
        """Fold the events after `after`, then replace `live` by `fresh`; the new position."""
        tracking_table = TRACKING_TABLE if self.postgres else "tracking"
        with self.datastore.transaction(commit=True) as curs:
            if self.postgres:
                curs.execute(
                    self._sql(
                        "SELECT notification_id FROM {0} WHERE application_name = %s FOR UPDATE",
                        tracking_table,
                    ),
                    (tracking,),
                )
                curs.execute(self._sql("LOCK TABLE {0} IN ACCESS EXCLUSIVE MODE", live))
            else:  # a write first: this transaction now holds SQLite's one write lock
                curs.execute(self._sql("DELETE FROM {0} WHERE key IS NULL", live))
            head, delta = self._delta(curs, after, topics)
            if delta:
                curs.executemany(self._sql(_UPSERT, fresh), fold(delta))
            curs.execute(self._sql("DROP TABLE {0}", live))
            rename = "ALTER TABLE {0} RENAME TO " + (f'"{live}"' if not self.postgres else "{1}")
            if self.postgres:
                curs.execute(SQL(rename).format(self._table(fresh), Identifier(live)))
            else:
                curs.execute(rename.format(self._table(fresh)))
            curs.execute(
                self._sql(
                    "INSERT INTO {0} (application_name, notification_id) VALUES (%s, %s) "
                    "ON CONFLICT (application_name) DO UPDATE "
                    "SET notification_id = excluded.notification_id",
                    tracking_table,
                ),
                (tracking, head),
            )
        return head

    def head(self, curs: Any) -> int:
        events = self.recorder.events_table_name
        query = "SELECT max(notification_id) AS head FROM {0}"
        curs.execute(
            self._sql(query if self.postgres else query.replace("notification_id", "rowid"), events)
        )
        head: int = curs.fetchone()["head"] or 0
        return head

    def _delta(
        self, curs: Any, after: int, topics: Sequence[str]
    ) -> tuple[int, list[Notification]]:
        """The head of the log and the events of `topics` after `after`, read in `curs`."""
        head = self.head(curs)
        return head, self._window(curs, after, head, topics)

    def window(self, after: int, upto: int, topics: Sequence[str]) -> list[Notification]:
        """The events of `topics` with positions in (after, upto], in order.

        A replay reads the log in such windows of positions: an index range each, where a
        `LIMIT` with a topic filter lets the planner sort whatever is left of the table, again
        for every batch (it made rebuilds quadratic)."""
        with self.datastore.transaction(commit=False) as curs:
            return self._window(curs, after, upto, topics)

    def _window(
        self, curs: Any, after: int, upto: int, topics: Sequence[str]
    ) -> list[Notification]:
        events = self.recorder.events_table_name
        if self.postgres:
            curs.execute(
                self._sql(
                    "SELECT notification_id AS id, originator_id, originator_version, topic, "
                    "state FROM {0} WHERE notification_id > %s AND notification_id <= %s "
                    "AND topic = ANY(%s) ORDER BY notification_id",
                    events,
                ),
                (after, upto, list(topics)),
            )
        else:
            curs.execute(
                self._sql(
                    "SELECT rowid AS id, originator_id, originator_version, topic, state "
                    "FROM {0} WHERE rowid > %s AND rowid <= %s "
                    "AND topic IN (SELECT value FROM json_each(%s)) ORDER BY rowid",
                    events,
                ),
                (after, upto, json.dumps(list(topics))),
            )
        convert = getattr(self.recorder, "convert_originator_id", lambda value: value)
        return [
            Notification(
                id=r["id"],
                originator_id=convert(r["originator_id"]),
                originator_version=r["originator_version"],
                topic=r["topic"],
                state=bytes(r["state"]),
            )
            for r in curs.fetchall()
        ]

    # Point-in-time copies: a table each, listed in keyledger_projection_copies.

    def register_copy(
        self,
        name: str,
        projection: str,
        table: str,
        until: datetime,
        position: int,
        records: int,
        created: datetime,
    ) -> None:
        with self.datastore.transaction(commit=True) as curs:
            curs.execute(_COPIES)
            curs.execute(
                self._sql(
                    "INSERT INTO keyledger_projection_copies VALUES (%s, %s, %s, %s, %s, %s, %s)"
                ),
                (
                    name,
                    projection,
                    table,
                    until.isoformat(),
                    position,
                    records,
                    created.isoformat(),
                ),
            )

    def copies(self) -> list[dict[str, Any]]:
        with self.datastore.transaction(commit=True) as curs:
            curs.execute(_COPIES)
            curs.execute(
                "SELECT name, projection, table_name, until_time, position, records, created_at "
                "FROM keyledger_projection_copies ORDER BY until_time, name"
            )
            return [dict(r) for r in curs.fetchall()]

    def forget_copy(self, name: str) -> None:
        with self.datastore.transaction(commit=True) as curs:
            curs.execute(_COPIES)
            curs.execute(
                self._sql("DELETE FROM keyledger_projection_copies WHERE name = %s"), (name,)
            )


_UPSERT = UPSERT.replace("{1}", "%s")  # the projection tables' own upsert, `%s` marks
