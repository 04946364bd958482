"""Issue 17, PostgreSQL: a new store's events table is partitioned so that a month of token
events can leave by dropping a table. Every event lands where its kind says, one event per
aggregate version still holds across the partitions, a month whose ids already sit in the
default table stays there and still leaves, and a store made before partitioning keeps
working, is never cleaned by a DELETE, and moves into the partitioned layout on request."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import NamedTuple

import psycopg
import pytest
from click.testing import CliRunner
from eventsourcing.persistence import IntegrityError

from adapters.event_store import Ledger
from adapters.postgres_recorder import ensure_token_months, month_table
from adapters.token_event_rows import SingleTable
from api.bootstrap import token_retention
from api.cli.main import cli
from api.settings import Settings
from domain.signing_keys import SigningKeys
from domain.token import IssuedToken
from domain.token_periods import TokenPeriod
from tests.integration.token_history import token

NOW = datetime.now(UTC)


@pytest.fixture
def ledger(postgres_url: str) -> Iterator[Ledger]:
    store = Ledger(postgres_url)
    yield store
    store.close()


def tables_of(url: str) -> dict[int, str]:
    with psycopg.connect(url) as conn:
        return {
            int(row[0]): str(row[1])
            for row in conn.execute(
                "SELECT notification_id, tableoid::regclass::text FROM keyledger_events "
                "ORDER BY notification_id"
            )
        }


def test_each_event_lands_in_the_table_its_kind_says(ledger: Ledger, postgres_url: str) -> None:
    ledger.save(
        token(NOW),
        token(NOW, jti=str(uuid.uuid4())),  # an older token: UUIDv4 jti, name-based id
        SigningKeys(at=NOW),
        token(datetime(2021, 5, 4, tzinfo=UTC)),  # a month without a table of its own
    )
    assert list(tables_of(postgres_url).values()) == [
        month_table("keyledger_events", TokenPeriod.of(NOW)),
        "keyledger_events_legacy_tokens",
        "keyledger_events_kept",
        "keyledger_events_tokens_default",
    ]


def a_raw_event() -> tuple[list[uuid.UUID], list[int], list[str], list[bytes]]:
    """The append function's arguments for one event that is not a token's."""
    return [uuid.uuid4()], [1], ["tests:Appended"], [b"{}"]


def test_an_append_locks_the_events_table_itself_not_each_of_its_tables(
    ledger: Ledger, postgres_url: str
) -> None:
    """Locking every month table on every batch cost about a third of an append's time."""
    with psycopg.connect(postgres_url) as writer:
        writer.execute(ledger.recorder.append_statement, a_raw_event()).fetchall()
        held = writer.execute(
            "SELECT relation::regclass::text FROM pg_locks WHERE pid = pg_backend_pid() "
            "AND locktype = 'relation' AND mode = 'ExclusiveLock'"
        ).fetchall()
        writer.rollback()
    assert [row[0] for row in held] == ["keyledger_events"]


def test_an_append_waits_until_the_append_before_it_has_committed(
    ledger: Ledger, postgres_url: str
) -> None:
    """Positions follow commit order: a reader never passes a position that fills in later."""
    statement = ledger.recorder.append_statement
    with (
        psycopg.connect(postgres_url) as first,
        psycopg.connect(postgres_url, autocommit=True) as second,
        ThreadPoolExecutor(1) as pool,
    ):
        [(first_position,)] = first.execute(statement, a_raw_event()).fetchall()
        pid = second.info.backend_pid
        later = pool.submit(lambda: second.execute(statement, a_raw_event()).fetchall())
        with psycopg.connect(postgres_url, autocommit=True) as watcher:
            deadline = time.monotonic() + 4  # under the append's 5 s lock_timeout
            while watcher.execute(
                "SELECT wait_event_type IS DISTINCT FROM 'Lock' FROM pg_stat_activity "
                "WHERE pid = %s",
                (pid,),
            ).fetchone() != (False,):
                assert not later.done(), f"the second append did not wait: {later.exception()}"
                assert time.monotonic() < deadline, "the second append never waited"
                time.sleep(0.01)
        assert not later.done()
        first.commit()
        [(second_position,)] = later.result(timeout=10)
    assert second_position > first_position


def test_month_tables_are_made_a_year_ahead(postgres_url: str, ledger: Ledger) -> None:
    with psycopg.connect(postgres_url) as conn:
        names = {
            row[0]
            for row in conn.execute(
                "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                "WHERE i.inhparent = 'keyledger_events_tokens'::regclass"
            )
        }
    period = TokenPeriod.of(NOW)
    for _ in range(13):
        assert month_table("keyledger_events", period) in names
        period = period.next()


def test_one_event_per_aggregate_version_still_holds(ledger: Ledger) -> None:
    first = token(NOW)
    ledger.save(first)
    with pytest.raises(IntegrityError):
        ledger.save(token(NOW, jti=first.jti))  # the same token id, version 1 again


def store_settings(url: str, tmp_path: Path) -> Settings:
    return Settings(database_url=url, keys_dir=tmp_path / "keys", kafka_bootstrap="off")


def test_a_month_already_in_the_default_table_stays_there_and_still_leaves(
    ledger: Ledger, postgres_url: str, tmp_path: Path
) -> None:
    old = TokenPeriod(2021, 5)
    ledger.save(*(token(old.start + timedelta(days=n)) for n in range(3)))
    with psycopg.connect(postgres_url) as conn, conn.cursor() as curs:
        assert ensure_token_months(curs, "public", "keyledger_events", old, months=0) == [old]
    runner = token_retention(ledger, store_settings(postgres_url, tmp_path), tmp_path)
    runner._behind = lambda position: []  # no read model in this test
    [removal] = runner.run("test").removed
    assert (removal.period, removal.removed) == ("2021-05", 3)
    assert "keyledger_events_tokens_default" not in tables_of(postgres_url).values()


def test_a_store_made_before_partitioning_keeps_working_and_refuses_a_delete(
    postgres_url: str, tmp_path: Path
) -> None:
    single_events_table(postgres_url)
    store = Ledger(postgres_url)
    try:
        old = token(datetime(2021, 5, 4, tzinfo=UTC))
        store.save(old, token(NOW))
        assert store.head() == 2
        runner = token_retention(store, store_settings(postgres_url, tmp_path), tmp_path)
        runner._behind = lambda position: []
        with pytest.raises(SingleTable, match="created before token events were partitioned"):
            runner.run("test")
        assert store.repository.get(old.id).jti == old.jti  # nothing removed
    finally:
        store.close()


PARTITION_STORE = ["retention", "partition-store", "--yes", "--database-url"]


class Moved(NamedTuple):
    rows: dict[int, tuple[str, int, str, bytes]]  # every event before the move, by position
    old: IssuedToken  # a token of May 2021, a month past retention


@pytest.fixture
def moved(postgres_url: str) -> Moved:
    """A store made before partitioning, with events of every kind, moved into the layout by
    `partition-store`."""
    single_events_table(postgres_url)
    store = Ledger(postgres_url)
    old = token(datetime(2021, 5, 4, tzinfo=UTC))
    legacy = token(datetime(2021, 6, 1, tzinfo=UTC), jti=str(uuid.uuid4()))
    store.save(old, SigningKeys(at=NOW), legacy, token(NOW))
    store.close()
    before = rows_of(postgres_url)
    result = CliRunner().invoke(cli, [*PARTITION_STORE, postgres_url])
    assert result.exit_code == 0, result.output
    assert "moved 4 events" in result.stdout
    return Moved(before, old)


@pytest.fixture
def opened(postgres_url: str, moved: Moved) -> Iterator[Ledger]:
    """The store, opened once it was moved."""
    store = Ledger(postgres_url)
    yield store
    store.close()


def test_partition_store_keeps_every_event_at_its_own_position(
    postgres_url: str, moved: Moved
) -> None:
    assert rows_of(postgres_url) == moved.rows  # byte for byte


def test_partition_store_puts_each_event_in_the_table_its_kind_says(
    postgres_url: str, moved: Moved
) -> None:
    assert set(tables_of(postgres_url).values()) == {
        "keyledger_events_tokens_2021_05",
        "keyledger_events_kept",
        "keyledger_events_legacy_tokens",
        month_table("keyledger_events", TokenPeriod.of(NOW)),
    }


def test_positions_go_on_after_the_last_one_once_partitioned(opened: Ledger, moved: Moved) -> None:
    opened.save(token(NOW))

    assert opened.head() == max(moved.rows) + 1


def test_retention_removes_a_month_from_a_store_once_partitioned(
    opened: Ledger, postgres_url: str, tmp_path: Path, moved: Moved
) -> None:
    runner = token_retention(opened, store_settings(postgres_url, tmp_path), tmp_path)
    runner._behind = lambda position: []  # no read model in this test

    assert [r.period for r in runner.run("test").removed] == ["2021-05"]
    assert moved.old.id not in opened.repository


def test_a_partitioned_store_is_not_partitioned_again(postgres_url: str, moved: Moved) -> None:
    again = CliRunner().invoke(cli, [*PARTITION_STORE, postgres_url])

    assert again.exit_code == 1
    assert "partitioned already" in again.stderr


def rows_of(url: str) -> dict[int, tuple[str, int, str, bytes]]:
    with psycopg.connect(url) as conn:
        return {
            int(r[0]): (str(r[1]), int(r[2]), str(r[3]), bytes(r[4]))
            for r in conn.execute(
                "SELECT notification_id, originator_id, originator_version, topic, state "
                "FROM keyledger_events ORDER BY notification_id"
            )
        }


def single_events_table(url: str) -> None:
    """The events table as versions before partitioning made it."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE keyledger_events (originator_id uuid NOT NULL, "
            "originator_version bigint NOT NULL, topic text, state bytea, "
            "notification_id bigserial, PRIMARY KEY (originator_id, originator_version))"
        )
        conn.execute("CREATE UNIQUE INDEX ON keyledger_events (notification_id)")
