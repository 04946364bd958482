"""The durable clients read model: one row per client, written with its tracked position.

Rows and the tracking position commit in one transaction. The tracking row is written
first, so a writer that is behind another (two replicas following the same log) fails at
once with `IntegrityError` and writes nothing, instead of overwriting newer rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

from eventsourcing.persistence import IntegrityError, Tracking
from eventsourcing.postgres import PostgresDatastore, PostgresTrackingRecorder
from eventsourcing.sqlite import SQLiteTrackingRecorder
from psycopg.sql import SQL, Identifier

from domain.client_record import ClientRecord

PROJECTION_NAME = "clients"
TABLE = "keyledger_clients"
TRACKING_TABLE = "keyledger_projection_tracking"


class ClientsTable(Protocol):
    """Storage for the clients read model and its position in the notification log."""

    def load(self) -> tuple[list[ClientRecord], int]: ...

    def write(self, records: Sequence[ClientRecord], position: int) -> bool: ...


class _ClientsTableOperations:
    """`load` and `write` over the dialect's SQL; the recorder supplies the tracking calls."""

    datastore: Any
    _select_sql: Any
    _upsert_sql: Any

    if TYPE_CHECKING:  # provided by the recorder class this is mixed into

        def _max_tracking_id(self, application_name: str, curs: Any) -> int | None: ...

        def _insert_tracking(self, curs: Any, tracking: Tracking) -> None: ...

    def load(self) -> tuple[list[ClientRecord], int]:
        with self.datastore.transaction(commit=False) as curs:
            position = self._max_tracking_id(PROJECTION_NAME, curs) or 0
            curs.execute(self._select_sql)
            return [ClientRecord.from_json(r["record"]) for r in curs.fetchall()], position

    def write(self, records: Sequence[ClientRecord], position: int) -> bool:
        try:
            with self.datastore.transaction(commit=True) as curs:
                self._insert_tracking(curs, Tracking(PROJECTION_NAME, position))
                curs.executemany(
                    self._upsert_sql, [(r.client_id, r.status, r.to_json()) for r in records]
                )
        except IntegrityError:
            return False
        return True


class PostgresClientsTable(_ClientsTableOperations, PostgresTrackingRecorder):
    """The clients read model in PostgreSQL."""

    def __init__(self, datastore: PostgresDatastore) -> None:
        super().__init__(datastore, tracking_table_name=TRACKING_TABLE)
        table = Identifier(datastore.schema, TABLE)
        self.sql_create_statements.append(
            SQL(
                "CREATE TABLE IF NOT EXISTS {0} ("
                "client_id text PRIMARY KEY, status text NOT NULL, record text NOT NULL)"
            ).format(table)
        )
        self._upsert_sql = SQL(
            "INSERT INTO {0} (client_id, status, record) VALUES (%s, %s, %s) "
            "ON CONFLICT (client_id) DO UPDATE SET status = EXCLUDED.status, "
            "record = EXCLUDED.record"
        ).format(table)
        self._select_sql = SQL("SELECT record FROM {0}").format(table)


class SQLiteClientsTable(_ClientsTableOperations, SQLiteTrackingRecorder):
    """The clients read model in SQLite (the tracking table name is fixed by eventsourcing)."""

    _select_sql = f"SELECT record FROM {TABLE}"  # noqa: S608 - a constant name
    _upsert_sql = (
        f"INSERT INTO {TABLE} (client_id, status, record) VALUES (?, ?, ?) "  # noqa: S608
        "ON CONFLICT (client_id) DO UPDATE SET status = excluded.status, record = excluded.record"
    )

    def construct_create_table_statements(self) -> list[str]:
        return [
            *super().construct_create_table_statements(),
            f"CREATE TABLE IF NOT EXISTS {TABLE} ("
            "client_id TEXT PRIMARY KEY, status TEXT NOT NULL, record TEXT NOT NULL)",
        ]


def clients_table(datastore: Any) -> ClientsTable:
    """The clients table beside the event store, its schema created if missing."""
    table: PostgresClientsTable | SQLiteClientsTable
    if isinstance(datastore, PostgresDatastore):
        table = PostgresClientsTable(datastore)
    else:
        table = SQLiteClientsTable(datastore)
    table.create_table()
    return table
