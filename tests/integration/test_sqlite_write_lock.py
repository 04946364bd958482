"""SQLite write transactions take the file's write lock when they begin (adapters/sqlite_store.py):
one that reads before it writes is not refused when another process commits in between."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

from adapters.event_store import Ledger


def _insert_from_another_connection(path: Path, value: int) -> None:
    with sqlite3.connect(path, timeout=10, isolation_level=None) as other:
        other.execute("INSERT INTO t (n) VALUES (?)", (value,))


def test_a_write_transaction_that_reads_first_survives_another_writers_commit(
    tmp_path: Path,
) -> None:
    path = tmp_path / "k.db"
    ledger = Ledger(f"sqlite:///{path}")
    try:
        with ledger.datastore.transaction(commit=True) as curs:
            curs.execute("CREATE TABLE t (n INTEGER)")
        other = threading.Thread(target=_insert_from_another_connection, args=(path, 2))
        with ledger.datastore.transaction(commit=True) as curs:
            curs.execute("SELECT count(*) FROM t")
            other.start()
            other.join(0.5)  # it waits for this transaction's lock instead of committing first
            curs.execute("INSERT INTO t (n) VALUES (1)")
        other.join(10)
        with ledger.datastore.transaction(commit=False) as curs:
            curs.execute("SELECT n FROM t ORDER BY rowid")
            assert [row["n"] for row in curs.fetchall()] == [1, 2]
    finally:
        ledger.close()


def test_a_read_transaction_does_not_hold_the_write_lock(tmp_path: Path) -> None:
    path = tmp_path / "k.db"
    ledger = Ledger(f"sqlite:///{path}")
    try:
        with ledger.datastore.transaction(commit=True) as curs:
            curs.execute("CREATE TABLE t (n INTEGER)")
        with ledger.datastore.transaction(commit=False) as curs:
            curs.execute("SELECT count(*) FROM t")
            with sqlite3.connect(path, timeout=0, isolation_level=None) as other:
                other.execute("INSERT INTO t (n) VALUES (3)")  # no wait: nobody holds the lock
    finally:
        ledger.close()
