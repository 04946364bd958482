"""Durable read-model tables: one JSON row per key, written with the projection's position.

Rows and the tracking position commit in one transaction. The tracking row is written
first, so a writer that is behind another (two replicas following the same log) fails at
once with `IntegrityError` and writes nothing, instead of overwriting newer rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from eventsourcing.persistence import IntegrityError, Tracking
from eventsourcing.postgres import PostgresDatastore, PostgresTrackingRecorder
from eventsourcing.sqlite import SQLiteDatastore, SQLiteTrackingRecorder
from psycopg.sql import SQL, Identifier

from adapters.postgres_recorder import SCHEMA_LOCK_KEY
from adapters.sqlite_store import schema_missing
from domain.client_record import ClientRecord

R = TypeVar("R")
TRACKING_TABLE = "keyledger_projection_tracking"


class Codec(Protocol[R]):
    """How a projection's records become rows."""

    def key(self, record: R) -> str: ...

    def status(self, record: R) -> str: ...

    def to_json(self, record: R) -> str: ...

    def from_json(self, text: str) -> R: ...


class ProjectionTable(Protocol[R]):
    """Storage for a read model and its position in the notification log."""

    def load(self) -> tuple[list[R], int]: ...

    def write(self, records: Sequence[R], position: int) -> bool: ...

    def position(self) -> int: ...

    def load_range(self, low: str, high: str) -> list[R]: ...


class _Operations(Generic[R]):
    """`load` and `write` over the dialect's SQL; the recorder supplies the tracking calls."""

    datastore: Any
    projection: str
    codec: Codec[R]
    _select_sql: Any
    _upsert_sql: Any
    _range_sql: Any

    if TYPE_CHECKING:  # provided by the recorder class this is mixed into

        def _max_tracking_id(self, application_name: str, curs: Any) -> int | None: ...

        def _insert_tracking(self, curs: Any, tracking: Tracking) -> None: ...

    def load(self) -> tuple[list[R], int]:
        with self.datastore.transaction(commit=False) as curs:
            position = self._max_tracking_id(self.projection, curs) or 0
            curs.execute(self._select_sql)
            return [self.codec.from_json(r["record"]) for r in curs.fetchall()], position

    def load_range(self, low: str, high: str) -> list[R]:
        """The records whose key is in [low, high), in key order (an index range scan)."""
        with self.datastore.transaction(commit=False) as curs:
            curs.execute(self._range_sql, (low, high))
            return [self.codec.from_json(r["record"]) for r in curs.fetchall()]

    def position(self) -> int:
        """The last notification id folded into the table (0 before the first)."""
        with self.datastore.transaction(commit=False) as curs:
            return self._max_tracking_id(self.projection, curs) or 0

    def write(self, records: Sequence[R], position: int) -> bool:
        c = self.codec
        try:
            with self.datastore.transaction(commit=True) as curs:
                self._insert_tracking(curs, Tracking(self.projection, position))
                curs.executemany(
                    self._upsert_sql, [(c.key(r), c.status(r), c.to_json(r)) for r in records]
                )
        except IntegrityError:
            return False
        return True


def row_columns(postgres: bool) -> str:
    """A projection table's columns. On PostgreSQL keys compare byte by byte (not by the
    database's locale), so a key range is a time range."""
    collate = ' COLLATE "C"' if postgres else ""
    return f"(key text{collate} PRIMARY KEY, status text NOT NULL, record text NOT NULL)"


_DDL = "CREATE TABLE IF NOT EXISTS {0} " + row_columns(postgres=False)
UPSERT = (
    "INSERT INTO {0} (key, status, record) VALUES ({1}, {1}, {1}) "
    "ON CONFLICT (key) DO UPDATE SET status = excluded.status, record = excluded.record"
)


_RANGE = "SELECT record FROM {0} WHERE key >= ? AND key < ? ORDER BY key"


class PostgresProjectionTable(_Operations[R], PostgresTrackingRecorder):
    def __init__(self, datastore: PostgresDatastore, table: str, projection: str, codec: Codec[R]):
        super().__init__(datastore, tracking_table_name=TRACKING_TABLE)
        self.projection, self.codec = projection, codec
        name = Identifier(datastore.schema, table)
        ddl = "CREATE TABLE IF NOT EXISTS {0} " + row_columns(postgres=True)
        self.sql_create_statements.append(SQL(ddl).format(name))
        self._upsert_sql = SQL(UPSERT.replace("{1}", "%s")).format(name)
        self._select_sql = SQL("SELECT record FROM {0}").format(name)
        self._range_sql = SQL(_RANGE.replace("?", "%s")).format(name)

    def _create_table(self, curs: Any) -> None:
        """Under the schema lock: two workers starting at once on a fresh database would
        otherwise race on CREATE TABLE IF NOT EXISTS, and one fails (its row type exists)."""
        curs.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK_KEY,))
        super()._create_table(curs)


class SQLiteProjectionTable(_Operations[R], SQLiteTrackingRecorder):
    """SQLite keeps one fixed tracking table (eventsourcing's); projections are rows in it."""

    def __init__(self, datastore: SQLiteDatastore, table: str, projection: str, codec: Codec[R]):
        self.table, self.projection, self.codec = table, projection, codec
        super().__init__(datastore)
        self._select_sql = f"SELECT record FROM {table}"  # noqa: S608 - a constant name
        self._upsert_sql = UPSERT.format(table, "?").replace("{1}", "?")
        self._range_sql = _RANGE.format(table)

    def construct_create_table_statements(self) -> list[str]:
        return [*super().construct_create_table_statements(), _DDL.format(self.table)]

    def create_table(self) -> None:
        """Only when a table is missing: a reader opening the table (every /metrics scrape's
        projection status) must not wait for SQLite's write lock (adapters/sqlite_store.py)."""
        if not schema_missing(self.datastore, "tracking", self.table):
            self.tracking_table_exists = True  # made single-row: no migration to check
            return
        super().create_table()


def projection_table(
    datastore: Any, table: str, projection: str, codec: Codec[R]
) -> ProjectionTable[R]:
    """The table beside the event store, its schema created if missing."""
    made: PostgresProjectionTable[R] | SQLiteProjectionTable[R]
    if isinstance(datastore, PostgresDatastore):
        made = PostgresProjectionTable(datastore, table, projection, codec)
    else:
        made = SQLiteProjectionTable(datastore, table, projection, codec)
    made.create_table()
    return made


class _ClientCodec:
    def key(self, record: ClientRecord) -> str:
        return record.client_id

    def status(self, record: ClientRecord) -> str:
        return record.status

    def to_json(self, record: ClientRecord) -> str:
        return record.to_json()

    def from_json(self, text: str) -> ClientRecord:
        return ClientRecord.from_json(text)


# Versioned: a read model whose shape changes gets a new name and rebuilds from the log.
CLIENTS_TABLE, CLIENTS_TRACKING = "keyledger_clients_v4", "clients-v4"
CLIENT_CODEC = _ClientCodec()


def clients_table(datastore: Any) -> ProjectionTable[ClientRecord]:
    return projection_table(datastore, CLIENTS_TABLE, CLIENTS_TRACKING, CLIENT_CODEC)
