"""SQLite write transactions take the file's write lock when they begin (adapters/sqlite_store.py):
one that reads before it writes is not refused when another process commits in between."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from adapters.event_store import Ledger
from adapters.projection_tables import clients_table
from api.bootstrap import prepare
from api.settings import Settings


@pytest.fixture
def store(tmp_path: Path) -> Iterator[tuple[Ledger, Path]]:
    """A SQLite event store with a table `t (n)`, and its file."""
    path = tmp_path / "k.db"
    ledger = Ledger(f"sqlite:///{path}")
    with ledger.datastore.transaction(commit=True) as curs:
        curs.execute("CREATE TABLE t (n INTEGER)")
    yield ledger, path
    ledger.close()


def _insert_from_another_connection(path: Path, value: int) -> None:
    with sqlite3.connect(path, timeout=10, isolation_level=None) as other:
        other.execute("INSERT INTO t (n) VALUES (?)", (value,))


def test_a_write_transaction_that_reads_first_survives_another_writers_commit(
    store: tuple[Ledger, Path],
) -> None:
    ledger, path = store
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


def test_a_read_transaction_does_not_hold_the_write_lock(store: tuple[Ledger, Path]) -> None:
    ledger, path = store
    with ledger.datastore.transaction(commit=False) as curs:
        curs.execute("SELECT count(*) FROM t")
        with sqlite3.connect(path, timeout=0, isolation_level=None) as other:
            other.execute("INSERT INTO t (n) VALUES (3)")  # no wait: nobody holds the lock


def test_reading_a_projection_table_waits_for_no_writer(tmp_path: Path) -> None:
    """Every /metrics scrape reads the projections' positions: never behind a CLI's write."""
    path = tmp_path / "k.db"
    ledger = Ledger(f"sqlite:///{path}")
    try:
        clients_table(ledger.datastore)  # the tables, as a starting server makes them
        positions: list[int] = []
        with sqlite3.connect(path, isolation_level=None) as writer:
            writer.execute("BEGIN IMMEDIATE")  # another process holds the write lock
            reader = threading.Thread(
                target=lambda: positions.append(clients_table(ledger.datastore).position())
            )
            reader.start()
            reader.join(5)
            read_while_locked = list(positions)
            writer.execute("ROLLBACK")
        reader.join(30)
        assert read_while_locked == [0]
    finally:
        ledger.close()


def test_a_commands_start_on_an_installed_store_waits_for_no_writer(tmp_path: Path) -> None:
    """Every CLI command prepares the store first: on an installed one, that only reads."""
    path = tmp_path / "k.db"
    settings = Settings(database_url=f"sqlite:///{path}", keys_dir=tmp_path / "keys")
    prepare(settings, create=True)
    done: list[bool] = []

    def command_start() -> None:
        prepare(settings)
        done.append(True)

    with sqlite3.connect(path, isolation_level=None) as writer:
        writer.execute("BEGIN IMMEDIATE")  # the server, or another command, is writing
        command = threading.Thread(target=command_start)
        command.start()
        command.join(5)
        prepared_while_locked = list(done)
        writer.execute("ROLLBACK")
    command.join(30)
    assert prepared_while_locked == [True]
