"""Issue 17, retention: months of token events past retention leave a real store (SQLite and
partitioned PostgreSQL) archived first, the removal recorded as an event naming the archive;
every other event stays, positions keep rising, a follower that still owes the events holds
the removal back, a second runner waits its turn, and a run that stopped midway is finished."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
import psycopg
import pytest
from click.testing import CliRunner

from adapters.clock import FixedClock, PostgresClock
from adapters.event_store import Ledger
from adapters.ledger_signer import note_key
from adapters.ledger_sources import stored_rows
from adapters.postgres_recorder import ensure_token_months
from adapters.token_archives import ArchiveDirectory
from api.bootstrap import ledger_tables, token_retention
from api.cli.main import cli
from api.settings import Settings
from api.usecases.token_retention import (
    AnotherRunner,
    ClocksDisagree,
    FollowersBehind,
    RetentionSchedule,
    RunResult,
    TokenRetentionRun,
)
from domain.admin_scopes import READ
from domain.ledger_keys import LEDGER_KEYS_ID
from domain.token import IssuedToken, new_jti
from domain.token_retention import TOKEN_RETENTION_ID, TokenRetention
from tests.integration.helpers import FORM, basic, register, running, stored_token
from tests.integration.test_ledger_checkpoints import service
from tests.integration.test_signing_keys_admin_api import bearer, token_for
from tests.integration.token_history import (
    NOW,
    OLD,
    fill,
    followers_catch_up,
    kept_rows,
    retention_at,
    token,
    tokens_in,
)


def test_months_past_retention_are_archived_then_removed_and_nothing_else_is(
    ledger: Ledger, settings: Settings, tmp_path: Path
) -> None:
    made = fill(ledger)
    before = list(stored_rows(ledger_tables(ledger)))
    old_ids = {t.id for p in OLD for t in made[p.name]}
    runner = retention_at(ledger, settings, tmp_path)

    removals = runner.run("test").removed

    assert [(r.period, r.events, r.tokens, r.removed) for r in removals] == [
        ("2024-01", 7, 6, 7),
        ("2024-02", 7, 6, 7),
    ]
    after = list(stored_rows(ledger_tables(ledger)))
    gone = [r for r in before if r not in after]
    assert {_uuid(r[1]) for r in gone} == old_ids
    assert [r for r in before if _uuid(r[1]) not in old_ids] == after[: len(before) - 14]
    record = ledger.repository.get(TOKEN_RETENTION_ID)
    assert isinstance(record, TokenRetention)
    for period in OLD:
        removed = record.removed[period.name]
        assert removed.archive == str(tmp_path / f"tokens-{period.name}.jsonl.gz")
        manifest, problems = ArchiveDirectory(tmp_path).verify(period)
        assert problems == []
        assert manifest is not None
        assert removed.sha256 == manifest.sha256
    # The removal events sit above every removed position: positions keep rising.
    assert min(r[0] for r in after[-2:]) > max(r[0] for r in gone)
    ledger.save(token(NOW))
    assert max(r[0] for r in stored_rows(ledger_tables(ledger))) > max(r[0] for r in before)


def _uuid(value: object) -> uuid.UUID:
    return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))


def test_a_second_run_has_nothing_to_do_and_an_archive_loads_back(
    ledger: Ledger, settings: Settings, tmp_path: Path
) -> None:
    fill(ledger)
    before = list(stored_rows(ledger_tables(ledger)))
    runner = retention_at(ledger, settings, tmp_path)
    runner.run("test")
    assert runner.run("test") == RunResult()
    assert runner.plan() == []
    archives = ArchiveDirectory(tmp_path)
    rows = retention_at(ledger, settings, tmp_path)._rows
    for period in OLD:
        assert rows.restore(archives.rows(period)) == (7, 0)
    restored = list(stored_rows(ledger_tables(ledger)))
    assert restored[: len(before)] == before


def test_a_dry_run_says_what_would_go_and_changes_nothing(
    ledger: Ledger, settings: Settings, tmp_path: Path
) -> None:
    fill(ledger)
    before = kept_rows(ledger)
    planned = retention_at(ledger, settings, tmp_path / "archives").plan()
    assert [(p.period, p.recorded) for p in planned] == [("2024-01", False), ("2024-02", False)]
    assert planned[0].removable_since == OLD[0].removable_at(timedelta(days=400))
    assert kept_rows(ledger) == before
    assert not (tmp_path / "archives").exists()


def test_a_shorter_retention_takes_more_months(
    ledger: Ledger, settings: Settings, tmp_path: Path
) -> None:
    fill(ledger)
    short = replace(settings, token_event_retention=1)
    planned = retention_at(ledger, short, tmp_path, datetime(2026, 12, 31, tzinfo=UTC)).plan()
    assert [p.period for p in planned] == ["2024-01", "2024-02", "2026-11"]


def test_a_follower_that_owes_the_events_holds_the_removal_back(
    ledger: Ledger, settings: Settings, tmp_path: Path
) -> None:
    made = {p.name: tokens_in(p, 3) for p in OLD}
    ledger.save(*made[OLD[0].name], *made[OLD[1].name])  # no read model has seen them
    before = kept_rows(ledger)
    runner = retention_at(ledger, settings, tmp_path)
    with pytest.raises(FollowersBehind, match="the analytics read model"):
        runner.run("test")
    assert kept_rows(ledger) == before  # archived, not removed
    followers_catch_up(ledger)
    assert [r.period for r in runner.run("test").removed] == ["2024-01", "2024-02"]


def test_the_audit_relay_holds_the_removal_back_until_it_has_published_them(
    ledger: Ledger, settings: Settings, tmp_path: Path
) -> None:
    fill(ledger)
    with_kafka = replace(settings, kafka_bootstrap="127.0.0.1:1")  # a relay that never ran
    with pytest.raises(FollowersBehind, match="the audit relay"):
        retention_at(ledger, with_kafka, tmp_path).run("test")


def test_a_second_runner_waits_its_turn(ledger: Ledger, settings: Settings, tmp_path: Path) -> None:
    fill(ledger)
    first = retention_at(ledger, settings, tmp_path / "a")
    second = retention_at(ledger, settings, tmp_path / "b")
    entered, release = threading.Event(), threading.Event()
    behind = first._behind

    def slow_followers(position: int) -> list[str]:
        entered.set()
        release.wait(10)
        return behind(position)

    first._behind = slow_followers
    outcome: list[RunResult] = []
    thread = threading.Thread(target=lambda: outcome.append(first.run("first")))
    thread.start()
    assert entered.wait(10)
    with pytest.raises(AnotherRunner):
        second.run("second")
    release.set()
    thread.join(10)
    assert [r.period for r in outcome[0].removed] == ["2024-01", "2024-02"]
    assert second.run("second") == RunResult()


def test_a_removal_recorded_but_stopped_midway_is_finished_by_the_next_run(
    ledger: Ledger, settings: Settings, tmp_path: Path
) -> None:
    made = fill(ledger)
    runner = retention_at(ledger, settings, tmp_path)
    real_remove = runner._rows.remove
    runner._rows.remove = lambda period, expected, upto: 0  # type: ignore[method-assign]
    runner.run("test")  # recorded, then "stopped" before any event left
    assert {str(_uuid(r[1])) for r in stored_rows(ledger_tables(ledger))} >= {
        str(t.id) for t in made[OLD[0].name]
    }
    assert [p.recorded for p in runner.plan()] == [True, True]
    runner._rows.remove = real_remove  # type: ignore[method-assign]
    finished = runner.run("test").removed
    assert [(r.period, r.removed, r.finished_earlier_run) for r in finished] == [
        ("2024-01", 7, True),
        ("2024-02", 7, True),
    ]


def test_the_cli_runs_retention_and_its_dry_run(
    ledger: Ledger, settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fill(ledger)
    monkeypatch.setenv("KEYLEDGER_KAFKA_BOOTSTRAP", "off")
    monkeypatch.setenv("KEYLEDGER_ARCHIVE_DIR", str(tmp_path / "archives"))
    url = ["--database-url", settings.database_url]
    dry = CliRunner().invoke(cli, ["retention", "run", "--dry-run", *url])
    assert dry.exit_code == 0, dry.output
    assert dry.stdout.splitlines() == [
        "would remove 2024-01: removable since 2025-03-08",
        "would remove 2024-02: removable since 2025-04-06",
    ]
    done = CliRunner().invoke(cli, ["retention", "run", *url])
    assert done.exit_code == 0, done.output
    assert done.stdout.splitlines()[0] == (
        "removed 2024-01: 7 events of 6 tokens, archived in "
        f"{tmp_path / 'archives' / 'tokens-2024-01.jsonl.gz'}"
    )


async def test_a_removal_while_tokens_are_issued_loses_no_token_and_stalls_no_follower(
    settings: Settings, tmp_path: Path
) -> None:
    async with running(settings) as (http, runtime):
        made = {p.name: tokens_in(p, 20) for p in OLD}
        runtime.ledger.save(*made[OLD[0].name], *made[OLD[1].name])
        creds = await register(runtime)
        runner = token_retention(runtime.ledger, settings, tmp_path)
        await followers_pass(runner, runtime.ledger.head())  # serve's read models, the tree

        async def issue() -> str:
            response = await http.post(
                "/oauth2/token",
                content="grant_type=client_credentials",
                headers={**basic(creds.client_id, creds.client_secret), **FORM},
            )
            assert response.status_code == 200, response.text
            claims = jwt.decode(
                response.json()["access_token"], options={"verify_signature": False}
            )
            return str(claims["jti"])

        removal = asyncio.create_task(asyncio.to_thread(runner.run, "test"))
        jtis = []
        while not removal.done() or len(jtis) < 40:
            jtis.extend(await asyncio.gather(*(issue() for _ in range(8))))
        removals = (await removal).removed

        assert [(r.period, r.removed) for r in removals] == [("2024-01", 21), ("2024-02", 21)]
        for jti in jtis:
            assert stored_token(runtime, jti).jti == jti  # every answered token is stored
        await followers_pass(runner, runtime.ledger.head())  # none is stuck


async def followers_pass(runner: TokenRetentionRun, position: int) -> None:
    async with asyncio.timeout(30):
        while runner._behind(position):  # noqa: ASYNC110 - serve's threads move them
            await asyncio.sleep(0.05)


async def test_a_removed_token_answers_where_it_was_archived(
    settings: Settings, tmp_path: Path
) -> None:
    async with running(settings) as (http, runtime):
        [old, *_] = tokens_in(OLD[0], 2)
        runtime.ledger.save(old)
        _, admin = await token_for(http, runtime, READ)
        assert (
            await http.get(f"/admin/tokens/{old.jti}", headers=bearer(admin))
        ).status_code == 200
        runner = token_retention(runtime.ledger, settings, tmp_path)
        await followers_pass(runner, runtime.ledger.head())
        await asyncio.to_thread(runner.run, "test")

        answer = await http.get(f"/admin/tokens/{old.jti}", headers=bearer(admin))
        assert answer.status_code == 404
        archive = tmp_path / "tokens-2024-01.jsonl.gz"
        assert (
            f"token {old.jti} was issued in 2024-01, whose token events were archived in "
            f"{archive}" in answer.json()["error_description"]
        )
        never = await http.get(f"/admin/tokens/{new_jti(NOW, bytes(10))}", headers=bearer(admin))
        assert never.status_code == 404
        assert "no token with jti" in never.text


async def test_serve_runs_retention_itself_when_asked(settings: Settings, tmp_path: Path) -> None:
    scheduled = replace(
        settings,
        retention_in_serve=True,
        retention_interval=0.2,
        archive_dir=tmp_path / "archives",
    )
    async with running(scheduled) as (_, runtime):
        made = tokens_in(OLD[0], 3)
        runtime.ledger.save(*made)
        async with asyncio.timeout(30):
            while any(t.id in runtime.ledger.repository for t in made):  # noqa: ASYNC110
                await asyncio.sleep(0.05)  # the schedule's thread removes them
        assert (tmp_path / "archives" / "tokens-2024-01.manifest.json").exists()
        record = runtime.ledger.repository.get(TOKEN_RETENTION_ID)
        assert record.removed["2024-01"].events == 4


def test_the_ledger_still_verifies_after_a_removal_from_the_archives(
    ledger: Ledger, settings: Settings, tmp_path: Path
) -> None:
    fill(ledger)
    tree_ledger, _, builder = service(settings.database_url)
    builder.step(force=True)  # the tree over every event, and a signed checkpoint
    builder.step()
    keys: Any = tree_ledger.repository.get(LEDGER_KEYS_ID)
    key = note_key(keys.current).encoded()
    removed = retention_at(ledger, settings, tmp_path / "a").run("t").removed
    assert [r.period for r in removed] == ["2024-01", "2024-02"]
    args = ["ledger", "verify", "--database-url", settings.database_url, "--key", key]

    verified = CliRunner().invoke(cli, [*args, "--json"])
    assert verified.exit_code == 0, verified.output
    assert json.loads(verified.stdout)["events"] == len(kept_rows(ledger)) + 14

    (tmp_path / "a").rename(tmp_path / "moved")
    lost = CliRunner().invoke(cli, args)
    assert lost.exit_code == 1
    assert "no archive of 2024-01" in lost.stderr
    found = CliRunner().invoke(cli, [*args, "--archives", str(tmp_path / "moved")])
    assert found.exit_code == 0, found.output


def test_the_archive_of_a_removed_month_is_never_written_over(
    ledger: Ledger, settings: Settings, tmp_path: Path
) -> None:
    fill(ledger)
    retention_at(ledger, settings, tmp_path).run("test")
    before = (tmp_path / "tokens-2024-01.jsonl.gz").read_bytes()
    url = ["--database-url", settings.database_url]
    result = CliRunner().invoke(
        cli, ["archive", "write", "2024-01", "--to", str(tmp_path), "--replace", *url]
    )
    assert result.exit_code == 1
    assert "2024-01 was removed from the store by retention" in result.stderr
    assert (tmp_path / "tokens-2024-01.jsonl.gz").read_bytes() == before


def test_a_runner_whose_clock_agrees_with_the_databases_goes_by_it(
    ledger: Ledger, settings: Settings, tmp_path: Path
) -> None:
    fill(ledger)

    planned = token_retention(ledger, settings, tmp_path).plan()  # the real clocks

    assert [p.period for p in planned] == ["2024-01", "2024-02"]


def ahead_of_the_database(ledger: Ledger, settings: Settings, archives: Path) -> TokenRetentionRun:
    """A runner whose clock is 800 days ahead (every month above would be removable by it)."""
    ahead = FixedClock(datetime.now(UTC) + timedelta(days=800))
    return token_retention(ledger, settings, archives, clock=ahead)


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_a_runner_whose_clock_is_ahead_of_the_databases_removes_nothing(
    ledger: Ledger, settings: Settings, tmp_path: Path
) -> None:
    fill(ledger)
    before = kept_rows(ledger)

    with pytest.raises(ClocksDisagree, match="agree within 5 minutes"):
        ahead_of_the_database(ledger, settings, tmp_path).run("test")

    assert kept_rows(ledger) == before


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_a_dry_run_whose_clock_is_ahead_of_the_databases_is_refused_too(
    ledger: Ledger, settings: Settings, tmp_path: Path
) -> None:
    fill(ledger)

    with pytest.raises(ClocksDisagree, match="agree within 5 minutes"):
        ahead_of_the_database(ledger, settings, tmp_path).plan()


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_serve_logs_that_retention_does_not_run_while_the_clocks_disagree(
    ledger: Ledger, settings: Settings, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    fill(ledger)
    before = kept_rows(ledger)

    RetentionSchedule(ahead_of_the_database(ledger, settings, tmp_path), interval=3600).run_once()

    assert "token retention does not run" in caplog.text
    assert kept_rows(ledger) == before


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_sqlite_store_goes_by_the_machines_clock_alone(
    ledger: Ledger, settings: Settings, tmp_path: Path
) -> None:
    fill(ledger)

    planned = ahead_of_the_database(ledger, settings, tmp_path).plan()

    assert [p.period for p in planned] == ["2024-01", "2024-02", "2026-11"]


def database_time(url: str) -> datetime:
    with psycopg.connect(url) as conn:
        found = conn.execute("SELECT clock_timestamp()").fetchone()
    assert found is not None
    return found[0]


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_the_postgres_clock_is_the_database_servers(ledger: Ledger) -> None:
    before = database_time(ledger.database_url)
    read = PostgresClock(ledger.datastore).now()
    after = database_time(ledger.database_url)

    assert before <= read <= after


def test_an_event_that_reaches_a_removed_month_after_its_archive_is_never_deleted(
    ledger: Ledger, settings: Settings, tmp_path: Path
) -> None:
    fill(ledger)
    runner = retention_at(ledger, settings, tmp_path)
    runner.run("test")
    late = token(OLD[0].start + timedelta(days=3))  # an issuer whose clock is far behind
    ledger.save(late)

    runner.run("test")

    assert late.id in ledger.repository  # in no archive: it stays in the store


@pytest.fixture
def a_month_gained_an_event(ledger: Ledger, settings: Settings, tmp_path: Path) -> IssuedToken:
    """A partitioned PostgreSQL store where a run recorded both old months and stopped before
    any event left, and then a token event reached January's table (an issuer whose clock is
    far behind): January's table holds an event its archive does not. The late token."""
    with psycopg.connect(settings.database_url) as conn, conn.cursor() as curs:
        ensure_token_months(curs, "public", "keyledger_events", OLD[0], months=1)
    fill(ledger)
    runner = retention_at(ledger, settings, tmp_path)
    runner._rows.remove = lambda period, expected, upto: 0  # type: ignore[method-assign]
    runner.run("test")
    late = token(OLD[0].start + timedelta(days=3))
    ledger.save(late)
    return late


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_a_month_whose_table_holds_more_than_its_archive_stays_and_the_others_go(
    ledger: Ledger, settings: Settings, tmp_path: Path, a_month_gained_an_event: IssuedToken
) -> None:
    result = retention_at(ledger, settings, tmp_path).run("test")

    assert [r.period for r in result.removed] == ["2024-02"]
    [held] = result.held_back
    assert held.period == "2024-01"
    assert "holds 8 events (1 after position" in held.reason
    assert a_month_gained_an_event.id in ledger.repository


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_the_cli_says_what_it_removed_and_what_it_held_back_and_exits_1(
    settings: Settings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    a_month_gained_an_event: IssuedToken,
) -> None:
    monkeypatch.setenv("KEYLEDGER_KAFKA_BOOTSTRAP", "off")
    monkeypatch.setenv("KEYLEDGER_ARCHIVE_DIR", str(tmp_path))

    done = CliRunner().invoke(cli, ["retention", "run", "--database-url", settings.database_url])

    assert done.exit_code == 1, done.output
    [removed, held] = done.stdout.splitlines()
    assert removed.startswith("removed 2024-02: 7 events of 6 tokens")
    assert held.startswith("held 2024-01 back: 2024-01's table holds 8 events")


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_serve_logs_what_retention_removed_and_what_it_held_back(
    ledger: Ledger,
    settings: Settings,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    a_month_gained_an_event: IssuedToken,
) -> None:
    runner = retention_at(ledger, settings, tmp_path)
    caplog.set_level(logging.INFO, logger="keyledger")

    RetentionSchedule(runner, interval=3600).run_once()

    assert "token retention removed 2024-02: 7 events" in caplog.text
    assert "token retention held 2024-01 back: 2024-01's table holds 8 events" in caplog.text
