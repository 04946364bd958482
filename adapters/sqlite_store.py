"""SQLite as the event store: eventsourcing's, with each write transaction taking the file's
one write lock when it begins (`BEGIN IMMEDIATE`).

eventsourcing begins every transaction with a plain `BEGIN`, which takes the write lock only
at the transaction's first write. A write transaction that reads first (`CREATE TABLE IF NOT
EXISTS`, a `SELECT` before its `INSERT`) and meets a commit another process made since its
read cannot move its snapshot forward: SQLite answers "database is locked" at once, without
waiting out the busy timeout. With a serving server and a CLI command writing one file, most
`projections rebuild` runs beside a loaded server failed that way. `BEGIN IMMEDIATE` waits for
the lock (up to the busy timeout, `SQLITE_LOCK_TIMEOUT`) before it reads anything. Reads
still begin deferred and never wait for a writer (WAL).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from eventsourcing.sqlite import (
    SQLiteConnection,
    SQLiteConnectionPool,
    SQLiteCursor,
    SQLiteDatastore,
    SQLiteFactory,
    SQLiteTransaction,
)
from eventsourcing.utils import Environment, EnvType


class _WriteLockFirst(SQLiteTransaction):
    def __enter__(self) -> SQLiteCursor:
        if not self.commit:
            return super().__enter__()
        cursor = self.connection.cursor()
        cursor.execute("BEGIN IMMEDIATE")
        return cursor


class _Connection(SQLiteConnection):
    @contextmanager
    def transaction(self, *, commit: bool) -> Iterator[SQLiteCursor]:
        with _WriteLockFirst(self, commit=commit) as curs, curs:
            yield curs


class _Pool(SQLiteConnectionPool):
    def _create_connection(self) -> SQLiteConnection:
        # eventsourcing's connection, with its WAL setup, rewrapped: the class that begins
        # transactions has no hook of its own (eventsourcing 9.4's sqlite module).
        plain = super()._create_connection()
        return _Connection(plain._sqlite_conn, max_age=self.max_age)


class WriteLockFirstSQLiteFactory(SQLiteFactory):
    """eventsourcing's SQLite factory, its pool's write transactions beginning IMMEDIATE."""

    def __init__(self, env: Environment | EnvType | None) -> None:
        super().__init__(env)
        unused = self.datastore.pool  # no connection made yet: the pool connects lazily
        self.datastore.pool = _Pool(
            db_name=unused.db_name,
            lock_timeout=unused.lock_timeout,
            pool_size=unused.pool_size,
            max_overflow=unused.max_overflow,
            pool_timeout=unused.pool_timeout,
            max_age=unused.max_age,
            pre_ping=unused.pre_ping,
        )
        unused.close()


def schema_missing(datastore: Any, *names: str) -> bool:
    """Whether to run a schema's "if missing" statements: on SQLite, only when a read finds
    one of these tables (or indexes) missing, since a write transaction waits for the file's
    write lock at every start and read path; on PostgreSQL always (no such wait)."""
    if not isinstance(datastore, SQLiteDatastore):
        return True
    with datastore.transaction(commit=False) as curs:
        marks = ", ".join("?" * len(names))
        curs.execute(f"SELECT count(*) FROM sqlite_master WHERE name IN ({marks})", names)  # noqa: S608
        found: int = curs.fetchone()[0]
    return found < len(names)
