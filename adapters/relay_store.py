"""What the audit relay reads and writes: the log, its position, and the one-relay lock.

PostgreSQL: a session advisory lock on a connection the relay holds for as long as it is the
active one. The log is read and the position written on that same connection, the position
with a compare-and-set, so a relay whose connection (and with it the lock) is gone can
neither read on nor store a position; it connects again (short timeouts, no retry storms)
and competes for the lock anew. When the process dies its connection closes, the lock is
released, and a standby takes over.
SQLite (one machine): an exclusive `flock` on a file beside the database, and the event
store's own reads.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import psycopg
from eventsourcing.persistence import Notification
from psycopg import sql

from adapters.named_lock import sqlite_path

_DDL = (
    "CREATE TABLE IF NOT EXISTS keyledger_relay_positions ("
    "name text PRIMARY KEY, position bigint NOT NULL)"
)


class LostLock(Exception):
    """The relay is no longer the active one (its lock or connection is gone)."""


class EventLog(Protocol):
    def read(self, after: int, limit: int) -> Sequence[Notification]: ...


class RelayStore(Protocol):
    """The active relay's lock, position and log (blocking calls: run them in a thread)."""

    def acquire(self) -> bool: ...

    def release(self) -> None: ...

    def position(self) -> int: ...

    def advance(self, old: int, new: int) -> None: ...

    def read(self, after: int, limit: int) -> Sequence[Notification]: ...


class PostgresRelayStore:
    def __init__(self, database_url: str, name: str, schema: str, events_table: str) -> None:
        self._url = database_url
        self._name = name
        self._conn: psycopg.Connection[Any] | None = None
        table = sql.Identifier(schema, events_table)
        self._read_sql = sql.SQL(
            "SELECT notification_id, originator_id, originator_version, topic, state FROM {} "
            "WHERE notification_id > %s ORDER BY notification_id LIMIT %s"
        ).format(table)

    def acquire(self) -> bool:
        self.release()
        # Keepalives: if this host vanishes, the server drops the session (and the lock)
        # within about half a minute, and a standby takes over.
        conn = psycopg.connect(
            self._url,
            autocommit=True,
            connect_timeout=5,
            keepalives=1,
            keepalives_idle=10,
            keepalives_interval=5,
            keepalives_count=3,
        )
        try:
            row = conn.execute(
                "SELECT pg_try_advisory_lock(hashtextextended(%s, 0))", (f"relay:{self._name}",)
            ).fetchone()
            if not (row and row[0]):
                conn.close()
                return False
            conn.execute(_DDL)
            conn.execute(
                "INSERT INTO keyledger_relay_positions (name, position) VALUES (%s, 0) "
                "ON CONFLICT (name) DO NOTHING",
                (self._name,),
            )
        except BaseException:
            conn.close()
            raise
        self._conn = conn
        return True

    def release(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.close()  # closing the session releases its advisory lock
            self._conn = None

    def _held(self) -> psycopg.Connection[Any]:
        if self._conn is None or self._conn.closed:
            raise LostLock("the relay holds no lock")
        return self._conn

    def position(self) -> int:
        sql = "SELECT position FROM keyledger_relay_positions WHERE name = %s"
        row = self._held().execute(sql, (self._name,)).fetchone()
        return int(row[0]) if row else 0

    def advance(self, old: int, new: int) -> None:
        cursor = self._held().execute(
            "UPDATE keyledger_relay_positions SET position = %s WHERE name = %s AND position = %s",
            (new, self._name, old),
        )
        if cursor.rowcount != 1:
            raise LostLock(f"the stored position moved away from {old}: another relay ran")

    def read(self, after: int, limit: int) -> Sequence[Notification]:
        rows = self._held().execute(self._read_sql, (after, limit)).fetchall()
        return [
            Notification(
                id=r[0], originator_id=r[1], originator_version=r[2], topic=r[3], state=bytes(r[4])
            )
            for r in rows
        ]


class SqliteRelayStore:
    def __init__(self, path: Path, name: str, log: EventLog) -> None:
        self._path = path
        self._name = name
        self._log = log
        self._lock_file: int | None = None

    def acquire(self) -> bool:
        self.release()
        fd = os.open(f"{self._path}.relay-{self._name}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._lock_file = fd
        with self._connect() as db:
            db.execute(_DDL)
            db.execute(
                "INSERT OR IGNORE INTO keyledger_relay_positions (name, position) VALUES (?, 0)",
                (self._name,),
            )
        return True

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self._path, timeout=30)

    def release(self) -> None:
        if self._lock_file is not None:
            os.close(self._lock_file)  # closing the descriptor drops the flock
            self._lock_file = None

    def position(self) -> int:
        if self._lock_file is None:
            raise LostLock("the relay holds no lock")
        with contextlib.closing(self._connect()) as db:
            row = db.execute(
                "SELECT position FROM keyledger_relay_positions WHERE name = ?", (self._name,)
            ).fetchone()
        return int(row[0]) if row else 0

    def advance(self, old: int, new: int) -> None:
        if self._lock_file is None:
            raise LostLock("the relay holds no lock")
        with contextlib.closing(self._connect()) as db, db:
            cursor = db.execute(
                "UPDATE keyledger_relay_positions SET position = ? WHERE name = ? AND position = ?",
                (new, self._name, old),
            )
        if cursor.rowcount != 1:
            raise LostLock(f"the stored position moved away from {old}: another relay ran")

    def read(self, after: int, limit: int) -> Sequence[Notification]:
        return self._log.read(after, limit)


def relay_store(ledger: Any, name: str) -> RelayStore:
    """The relay's view of the event store `ledger` (an `adapters.event_store.Ledger`)."""
    path = sqlite_path(ledger.database_url)
    if path is not None:
        return SqliteRelayStore(path, name, ledger)
    recorder = ledger.recorder
    return PostgresRelayStore(
        ledger.database_url, name, recorder.datastore.schema, recorder.events_table_name
    )


def reset_position(ledger: Any, name: str) -> None:
    """Publish everything again from the first event (after the broker lost its data)."""
    positions = relay_store(ledger, name)
    if not positions.acquire():
        raise LostLock("another relay is running; stop it before resetting its position")
    try:
        positions.advance(positions.position(), 0)
    finally:
        positions.release()


def relay_status(ledger: Any, name: str) -> dict[str, Any]:
    """Where the relay stands: stored position, head of the log, lag, and whether one runs."""
    store = relay_store(ledger, name)
    free = store.acquire()
    try:
        position = store.position() if free else _read_position_unlocked(ledger, name)
    finally:
        if free:
            store.release()
    head = int(ledger.head())
    return {
        "name": name,
        "position": position,
        "head": head,
        "lag_events": max(0, head - position),
        "relay_running": not free,
    }


def _read_position_unlocked(ledger: Any, name: str) -> int:
    query = "SELECT position FROM keyledger_relay_positions WHERE name = "
    path = sqlite_path(ledger.database_url)
    if path is not None:
        with contextlib.closing(sqlite3.connect(path)) as db:
            row = db.execute(query + "?", (name,)).fetchone()
    else:
        with psycopg.connect(ledger.database_url, connect_timeout=5) as conn:
            row = conn.execute(query + "%s", (name,)).fetchone()
    return int(row[0]) if row else 0
