"""Issue 17, retention: months of token events past retention leave a real store (SQLite and
partitioned PostgreSQL) archived first, the removal recorded as an event naming the archive;
every other event stays, positions keep rising, a follower that still owes the events holds
the removal back, a second runner waits its turn, and a run that stopped midway is finished."""

from __future__ import annotations

import asyncio
import json
import secrets
import threading
import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
import pytest
from click.testing import CliRunner

from adapters.event_store import Ledger
from adapters.ledger_signer import note_key
from adapters.ledger_sources import stored_rows
from adapters.token_archives import ArchiveDirectory
from api.bootstrap import ledger_tables, token_retention
from api.cli.main import cli
from api.settings import Settings
from api.usecases.analytics import analytics_follower
from api.usecases.token_retention import (
    AnotherRunner,
    ClocksDisagree,
    FollowersBehind,
    RetentionSchedule,
    TokenRetentionRun,
)
from domain.admin_scopes import READ
from domain.ledger_keys import LEDGER_KEYS_ID
from domain.signing_keys import SigningKeys
from domain.token import IssuedToken, new_jti
from domain.token_periods import TokenPeriod
from domain.token_retention import TOKEN_RETENTION_ID, TokenRetention
from projections.tokens import RevokedTokensFollower, RevokedTokensView, revoked_tokens_table
from tests.integration.helpers import FORM, basic, register, running, stored_token
from tests.integration.test_ledger_checkpoints import service
from tests.integration.test_signing_keys_admin_api import bearer, token_for

NOW = datetime(2026, 12, 3, 10, 0, tzinfo=UTC)
OLD = [TokenPeriod(2024, 1), TokenPeriod(2024, 2)]  # removable at NOW after 400 days
RECENT = TokenPeriod(2026, 11)  # not before 2027-12


def token(issued_at: datetime) -> IssuedToken:
    return IssuedToken(
        jti=new_jti(issued_at, secrets.token_bytes(10)),
        client_id=str(uuid.uuid4()),
        scopes=["invoices:read"],
        audience=["https://api.example.com"],
        issued_at=issued_at,
        expires_at=issued_at + timedelta(minutes=5),
        kid="Gx3kP9vQ2mN7rT5wY8zB1cD4fH6jL0sA-_uE3iO9pKq",
        client_version=1,
        secret_generation=1,
        auth_method="client_secret_basic",
        source_ip="192.0.2.7",
    )


def tokens_in(period: TokenPeriod, count: int) -> list[IssuedToken]:
    made = [token(period.start + timedelta(hours=5 * n + 1)) for n in range(count)]
    made[0].revoke(now=made[0].issued_at + timedelta(minutes=1), actor="test", reason=None)
    return made


@pytest.fixture
def ledger(database_url: str) -> Iterator[Ledger]:
    store = Ledger(database_url)
    yield store
    store.close()


def followers_catch_up(ledger: Ledger) -> None:
    """The read models that fold token events, as serve keeps them."""
    analytics = analytics_follower(ledger, 1.0)
    analytics.load()
    revoked = RevokedTokensFollower(
        ledger, revoked_tokens_table(ledger.datastore), RevokedTokensView()
    )
    revoked.load()


def fill(ledger: Ledger) -> dict[str, list[IssuedToken]]:
    made = {p.name: tokens_in(p, 6) for p in [*OLD, RECENT]}
    keys = SigningKeys(at=NOW)
    ledger.save(*made[OLD[0].name], keys, *made[OLD[1].name], *made[RECENT.name])
    followers_catch_up(ledger)
    return made


def kept_rows(ledger: Ledger) -> list[tuple[int, str, int]]:
    return [(r[0], str(r[1]), r[2]) for r in stored_rows(ledger_tables(ledger))]


def test_months_past_retention_are_archived_then_removed_and_nothing_else_is(
    ledger: Ledger, settings: Settings, tmp_path: Path
) -> None:
    made = fill(ledger)
    before = list(stored_rows(ledger_tables(ledger)))
    old_ids = {t.id for p in OLD for t in made[p.name]}
    runner = token_retention(ledger, settings, tmp_path)

    removals = runner.run(NOW, "test")

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
    runner = token_retention(ledger, settings, tmp_path)
    runner.run(NOW, "test")
    assert runner.run(NOW, "test") == []
    assert runner.plan(NOW) == []
    archives = ArchiveDirectory(tmp_path)
    rows = token_retention(ledger, settings, tmp_path)._rows
    for period in OLD:
        assert rows.restore(archives.rows(period)) == (7, 0)
    restored = list(stored_rows(ledger_tables(ledger)))
    assert restored[: len(before)] == before


def test_a_dry_run_says_what_would_go_and_changes_nothing(
    ledger: Ledger, settings: Settings, tmp_path: Path
) -> None:
    fill(ledger)
    before = kept_rows(ledger)
    planned = token_retention(ledger, settings, tmp_path / "archives").plan(NOW)
    assert [(p.period, p.recorded) for p in planned] == [("2024-01", False), ("2024-02", False)]
    assert planned[0].removable_since == OLD[0].removable_at(timedelta(days=400))
    assert kept_rows(ledger) == before
    assert not (tmp_path / "archives").exists()


def test_a_shorter_retention_takes_more_months(
    ledger: Ledger, settings: Settings, tmp_path: Path
) -> None:
    fill(ledger)
    short = replace(settings, token_event_retention=1)
    planned = token_retention(ledger, short, tmp_path).plan(datetime(2026, 12, 31, tzinfo=UTC))
    assert [p.period for p in planned] == ["2024-01", "2024-02", "2026-11"]


def test_a_follower_that_owes_the_events_holds_the_removal_back(
    ledger: Ledger, settings: Settings, tmp_path: Path
) -> None:
    made = {p.name: tokens_in(p, 3) for p in OLD}
    ledger.save(*made[OLD[0].name], *made[OLD[1].name])  # no read model has seen them
    before = kept_rows(ledger)
    runner = token_retention(ledger, settings, tmp_path)
    with pytest.raises(FollowersBehind, match="the analytics read model"):
        runner.run(NOW, "test")
    assert kept_rows(ledger) == before  # archived, not removed
    followers_catch_up(ledger)
    assert [r.period for r in runner.run(NOW, "test")] == ["2024-01", "2024-02"]


def test_the_audit_relay_holds_the_removal_back_until_it_has_published_them(
    ledger: Ledger, settings: Settings, tmp_path: Path
) -> None:
    fill(ledger)
    with_kafka = replace(settings, kafka_bootstrap="127.0.0.1:1")  # a relay that never ran
    with pytest.raises(FollowersBehind, match="the audit relay"):
        token_retention(ledger, with_kafka, tmp_path).run(NOW, "test")


def test_a_second_runner_waits_its_turn(ledger: Ledger, settings: Settings, tmp_path: Path) -> None:
    fill(ledger)
    first = token_retention(ledger, settings, tmp_path / "a")
    second = token_retention(ledger, settings, tmp_path / "b")
    entered, release = threading.Event(), threading.Event()
    behind = first._behind

    def slow_followers(position: int) -> list[str]:
        entered.set()
        release.wait(10)
        return behind(position)

    first._behind = slow_followers
    outcome: list[object] = []
    thread = threading.Thread(target=lambda: outcome.append(first.run(NOW, "first")))
    thread.start()
    assert entered.wait(10)
    with pytest.raises(AnotherRunner):
        second.run(NOW, "second")
    release.set()
    thread.join(10)
    assert [r.period for r in outcome[0]] == ["2024-01", "2024-02"]  # type: ignore[attr-defined]
    assert second.run(NOW, "second") == []


def test_a_removal_recorded_but_stopped_midway_is_finished_by_the_next_run(
    ledger: Ledger, settings: Settings, tmp_path: Path
) -> None:
    made = fill(ledger)
    runner = token_retention(ledger, settings, tmp_path)
    real_remove = runner._rows.remove
    runner._rows.remove = lambda period, expected, upto: 0  # type: ignore[method-assign]
    runner.run(NOW, "test")  # recorded, then "stopped" before any event left
    assert {str(_uuid(r[1])) for r in stored_rows(ledger_tables(ledger))} >= {
        str(t.id) for t in made[OLD[0].name]
    }
    assert [p.recorded for p in runner.plan(NOW)] == [True, True]
    runner._rows.remove = real_remove  # type: ignore[method-assign]
    finished = runner.run(NOW, "test")
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

        removal = asyncio.create_task(asyncio.to_thread(runner.run, datetime.now(UTC), "test"))
        jtis = []
        while not removal.done() or len(jtis) < 40:
            jtis.extend(await asyncio.gather(*(issue() for _ in range(8))))
        removals = await removal

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
        await asyncio.to_thread(runner.run, datetime.now(UTC), "test")

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
    assert [r.period for r in token_retention(ledger, settings, tmp_path / "a").run(NOW, "t")] == [
        "2024-01",
        "2024-02",
    ]
    args = ["ledger", "verify", "--database-url", settings.database_url, "--key", key]

    verified = CliRunner().invoke(cli, [*args, "--json"])
    assert verified.exit_code == 0, verified.output
    assert json.loads(verified.stdout)["events"] == len(kept_rows(ledger)) + 14

    (tmp_path / "a").rename(tmp_path / "moved")
    lost = CliRunner().invoke(cli, args)
    assert lost.exit_code == 1
    assert "no archive of 2024-01" in lost.stderr
    found = CliRunner().invoke(cli, [*args, "--archive-dir", str(tmp_path / "moved")])
    assert found.exit_code == 0, found.output


def test_the_archive_of_a_removed_month_is_never_written_over(
    ledger: Ledger, settings: Settings, tmp_path: Path
) -> None:
    fill(ledger)
    token_retention(ledger, settings, tmp_path).run(NOW, "test")
    before = (tmp_path / "tokens-2024-01.jsonl.gz").read_bytes()
    url = ["--database-url", settings.database_url]
    result = CliRunner().invoke(
        cli, ["archive", "write", "2024-01", "--to", str(tmp_path), "--replace", *url]
    )
    assert result.exit_code == 1
    assert "2024-01 was removed from the store by retention" in result.stderr
    assert (tmp_path / "tokens-2024-01.jsonl.gz").read_bytes() == before


def test_a_runner_whose_clock_disagrees_with_the_databases_does_not_run(
    ledger: Ledger, settings: Settings, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    fill(ledger)
    before = kept_rows(ledger)
    runner = token_retention(ledger, settings, tmp_path)
    real = datetime.now(UTC)
    ahead = real + timedelta(days=800)  # every month above would be removable by it

    assert runner.checked_now(real) == real
    if settings.database_url.startswith("sqlite"):
        assert runner.checked_now(ahead) == ahead  # one machine, one clock: nothing to ask
        return
    with pytest.raises(ClocksDisagree, match="agree within 5 minutes"):
        runner.checked_now(ahead)
    RetentionSchedule(runner, lambda: ahead, interval=3600).run_once()
    assert "token retention does not run" in caplog.text
    assert kept_rows(ledger) == before


def test_an_event_that_reaches_a_removed_month_after_its_archive_is_never_deleted(
    ledger: Ledger, settings: Settings, tmp_path: Path
) -> None:
    fill(ledger)
    runner = token_retention(ledger, settings, tmp_path)
    runner.run(NOW, "test")
    late = token(OLD[0].start + timedelta(days=3))  # an issuer whose clock is far behind
    ledger.save(late)

    runner.run(NOW, "test")

    assert late.id in ledger.repository  # in no archive: it stays in the store
