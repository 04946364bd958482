"""Under a steady load a batch waits, briefly, for as many requests as the last one held
(adapters/async_group_commit.py): fewer, larger transactions. Real PostgreSQL."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable

import pytest

from adapters.async_group_commit import AsyncPostgresGroupCommitter
from adapters.event_store import Ledger
from adapters.postgres_recorder import GroupCommitPostgresApplicationRecorder
from tests.integration.test_async_group_commit import issued

Committer = Callable[[float], AsyncPostgresGroupCommitter]
LONG = 30.0  # a wait no test sits through: reaching it would fail the test's own timeout


@pytest.fixture
async def ledger(postgres_url: str) -> AsyncIterator[Ledger]:
    ledger = Ledger(postgres_url)
    yield ledger
    ledger.close()


@pytest.fixture
async def committer(ledger: Ledger, postgres_url: str) -> AsyncIterator[Committer]:
    started: list[AsyncPostgresGroupCommitter] = []
    recorder = ledger.recorder
    assert isinstance(recorder, GroupCommitPostgresApplicationRecorder)

    def make(gather_wait: float) -> AsyncPostgresGroupCommitter:
        made = AsyncPostgresGroupCommitter(
            postgres_url, recorder.append_statement, ledger.mapper, gather_wait=gather_wait
        )
        started.append(made)
        return made

    yield make
    for made in started:
        await made.stop()


async def a_batch_of(writer: AsyncPostgresGroupCommitter, size: int) -> None:
    await asyncio.gather(*(writer.submit([issued()]) for _ in range(size)))


async def test_a_batch_waits_for_as_many_requests_as_the_last_one_held(
    committer: Committer,
) -> None:
    writer = committer(LONG)
    await writer.start()
    await a_batch_of(writer, 4)
    early = [writer.submit([issued()]) for _ in range(3)]
    await asyncio.sleep(0.2)
    assert not any(f.done() for f in early)  # three of four: still gathering
    last = writer.submit([issued()])
    async with asyncio.timeout(10):
        await asyncio.gather(*early, last)
    assert writer.batches == 2


async def test_a_lone_request_never_waits(committer: Committer) -> None:
    writer = committer(LONG)
    await writer.start()
    for _ in range(3):
        async with asyncio.timeout(10):
            await writer.submit([issued()])
    assert writer.batches == 3


async def test_a_batch_that_cannot_fill_commits_after_the_gather_wait(
    committer: Committer,
) -> None:
    writer = committer(0.3)
    await writer.start()
    await a_batch_of(writer, 4)
    began = time.monotonic()
    async with asyncio.timeout(10):
        await writer.submit([issued()])
    assert time.monotonic() - began >= 0.3
    await a_batch_of(writer, 1)  # the target fell to what came: one, committed at once
    assert writer.batches == 3


async def test_without_a_gather_wait_what_is_pending_commits_at_once(
    committer: Committer,
) -> None:
    writer = committer(0.0)
    await writer.start()
    await a_batch_of(writer, 4)
    async with asyncio.timeout(10):
        await writer.submit([issued()])


async def test_stopping_ends_a_gather_and_commits_what_waits(
    committer: Committer, ledger: Ledger
) -> None:
    writer = committer(LONG)
    await writer.start()
    await a_batch_of(writer, 4)
    waiting = [issued(), issued()]
    futures = [writer.submit([e]) for e in waiting]
    await asyncio.sleep(0.1)
    async with asyncio.timeout(10):
        await writer.stop()
    assert all(f.done() and f.exception() is None for f in futures)
    assert all(ledger.recorder.select_events(e.originator_id) for e in waiting)
