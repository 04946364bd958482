"""The event-loop group commit against a real PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from eventsourcing.persistence import IntegrityError

from adapters.async_group_commit import AsyncPostgresGroupCommitter
from adapters.event_store import Ledger
from adapters.postgres_recorder import GroupCommitPostgresApplicationRecorder
from domain.token import IssuedToken

NOW = datetime(2026, 11, 20, tzinfo=UTC)


def issued(jti: str | None = None) -> IssuedToken.Issued:
    return IssuedToken.issue(
        jti=jti or str(uuid.uuid4()),
        client_id="c1",
        scopes=["a"],
        audience=["https://api.example"],
        issued_at=NOW,
        expires_at=NOW + timedelta(seconds=300),
        kid="k",
        client_version=1,
        secret_generation=1,
        auth_method="client_secret_basic",
    )


@pytest.fixture
async def ledger(postgres_url: str) -> AsyncIterator[Ledger]:
    ledger = Ledger(postgres_url)
    yield ledger
    ledger.close()


@pytest.fixture
async def committer(
    ledger: Ledger, postgres_url: str
) -> AsyncIterator[AsyncPostgresGroupCommitter]:
    recorder = ledger.recorder
    assert isinstance(recorder, GroupCommitPostgresApplicationRecorder)
    committer = AsyncPostgresGroupCommitter(postgres_url, recorder.append_statement, ledger.mapper)
    await committer.start()
    yield committer
    await committer.stop()


def stored(ledger: Ledger, event: IssuedToken.Issued) -> bool:
    return bool(ledger.recorder.select_events(event.originator_id))


async def test_events_are_readable_once_their_future_resolves(
    ledger: Ledger, committer: AsyncPostgresGroupCommitter
) -> None:
    events = [issued() for _ in range(20)]
    await asyncio.gather(*(committer.submit([e]) for e in events))
    assert all(stored(ledger, e) for e in events)


async def test_requests_queued_behind_a_held_table_lock_commit_in_one_batch(
    ledger: Ledger, committer: AsyncPostgresGroupCommitter, postgres_url: str
) -> None:
    with psycopg.connect(postgres_url) as blocker:
        blocker.execute("LOCK TABLE keyledger_events IN EXCLUSIVE MODE")
        first = committer.submit([issued()])
        await asyncio.sleep(0.1)  # the writer now waits for the lock with one event
        rest_events = [issued() for _ in range(50)]
        rest = [committer.submit([e]) for e in rest_events]
        await asyncio.sleep(0.1)
        assert not first.done()  # nothing is answered before it is committed
        assert not stored(ledger, rest_events[0])
        blocker.rollback()
    await asyncio.gather(first, *rest)
    assert committer.batches == 2
    assert all(stored(ledger, e) for e in rest_events)


async def test_a_conflicting_event_fails_alone(
    ledger: Ledger, committer: AsyncPostgresGroupCommitter, postgres_url: str
) -> None:
    duplicate = issued("same-jti")
    await committer.submit([duplicate])
    with psycopg.connect(postgres_url) as blocker:
        blocker.execute("LOCK TABLE keyledger_events IN EXCLUSIVE MODE")
        blocked = committer.submit([issued()])
        await asyncio.sleep(0.1)
        good_events = [issued() for _ in range(5)]
        good = [committer.submit([e]) for e in good_events]
        bad = committer.submit([issued("same-jti")])
        blocker.rollback()
    await asyncio.gather(blocked, *good)
    with pytest.raises(psycopg.IntegrityError):
        await bad
    assert all(stored(ledger, e) for e in good_events)
    assert len(ledger.recorder.select_events(duplicate.originator_id)) == 1


async def test_a_lost_connection_is_reopened_and_the_batch_resent(
    ledger: Ledger, committer: AsyncPostgresGroupCommitter, postgres_url: str
) -> None:
    await committer.submit([issued()])
    with psycopg.connect(postgres_url, autocommit=True) as admin:
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
    event = issued()
    await committer.submit([event])
    assert stored(ledger, event)


async def test_stopping_commits_everything_already_queued(
    ledger: Ledger, postgres_url: str
) -> None:
    recorder = ledger.recorder
    assert isinstance(recorder, GroupCommitPostgresApplicationRecorder)
    committer = AsyncPostgresGroupCommitter(postgres_url, recorder.append_statement, ledger.mapper)
    await committer.start()
    events = [issued() for _ in range(30)]
    futures = [committer.submit([e]) for e in events]
    await committer.stop()
    await asyncio.gather(*futures)
    assert all(stored(ledger, e) for e in events)


def test_the_sync_recorder_shares_the_one_round_trip_append(ledger: Ledger) -> None:
    event = issued()
    ledger.append([event])
    with pytest.raises(IntegrityError):
        ledger.append([issued(), event])
    assert stored(ledger, event)
    token = ledger.repository.get(event.originator_id)
    assert isinstance(token, IssuedToken)
