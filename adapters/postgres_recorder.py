"""A PostgreSQL application recorder tuned for group commit: one round trip per batch.

eventsourcing's recorder sends `BEGIN`, the EXCLUSIVE table lock, `NOTIFY`, the insert and
`COMMIT` as separate statements, holding the table lock across client round trips and
whatever the client thread does in between. With several server processes writing, that
hold time is what serialises them (measured here: ≈5 ms per batch under load, for 1.5 ms of
work). This recorder calls one PL/pgSQL function, in autocommit mode, that takes the same
lock, notifies and inserts; the statement's implicit transaction commits when it returns.
The lock is held for server-side work only, it is still taken before any notification id is
drawn and released only at commit, so ids follow commit order and a reader tailing the log
never passes over a gap that fills in later. (eventsourcing's own `ENABLE_DB_FUNCTIONS` mode
skips that lock, and readers then miss events: do not use it.)

The batch travels as one array per column (`uuid[]`, `bigint[]`, `text[]`, `bytea[]`), which
psycopg dumps natively, rather than an array of a composite type, which it dumps as text
with regular expressions per field (≈34 µs an event, measured here).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from eventsourcing.persistence import InterfaceError, OperationalError, StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore
from eventsourcing.utils import retry
from psycopg import Cursor
from psycopg.rows import DictRow
from psycopg.sql import SQL, Identifier, Literal

# Serialises schema creation across processes (CREATE OR REPLACE FUNCTION is not race-safe).
_SCHEMA_LOCK_KEY = 0x6B6C_6564_6765_72  # "kledger"


class GroupCommitPostgresApplicationRecorder(PostgresApplicationRecorder):
    """Appends a batch of events with one call of a locking insert function."""

    def __init__(self, datastore: PostgresDatastore, *, events_table_name: str = "stored_events"):
        super().__init__(datastore, events_table_name=events_table_name)
        function = Identifier(datastore.schema, f"{events_table_name}_append")
        self.sql_create_statements.append(
            SQL(
                "CREATE OR REPLACE FUNCTION {function}("
                "ids {id_type}[], versions bigint[], topics text[], states bytea[]) "
                "RETURNS SETOF bigint LANGUAGE plpgsql AS $body$ "
                "BEGIN "
                "SET LOCAL lock_timeout = {lock_timeout}; "
                "LOCK TABLE {table} IN EXCLUSIVE MODE; "
                "NOTIFY {channel}; "
                "RETURN QUERY INSERT INTO {table} "
                "(originator_id, originator_version, topic, state) "
                "SELECT * FROM unnest(ids, versions, topics, states) "
                "RETURNING notification_id; "
                "END $body$"
            ).format(
                function=function,
                id_type=Identifier(datastore.originator_id_type),
                lock_timeout=Literal(f"{datastore.lock_timeout}s"),
                table=Identifier(datastore.schema, events_table_name),
                channel=Identifier(self.channel_name),
            )
        )
        self.append_statement = SQL("SELECT * FROM {function}(%s, %s, %s, %s)").format(
            function=function
        )

    def _create_table(self, curs: Cursor[DictRow]) -> None:
        curs.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK_KEY,))
        super()._create_table(curs)

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        if not stored_events:
            return []
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(
                self.append_statement,
                (
                    [e.originator_id for e in stored_events],
                    [e.originator_version for e in stored_events],
                    [e.topic for e in stored_events],
                    [e.state for e in stored_events],
                ),
                prepare=True,
            )
            return [
                row[0] if isinstance(row, tuple) else next(iter(row.values()))
                for row in curs.fetchall()
            ]
