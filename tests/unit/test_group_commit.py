"""Group commit: batches form under load, each caller learns its own outcome."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest

from adapters.group_commit import GroupCommitter, QueueFull, WriterStopped


class RecordingStore:
    """Saves into a list; can be held shut to let a backlog build, and can refuse items."""

    def __init__(self) -> None:
        self.saved: list[Any] = []
        self.calls: list[list[Any]] = []
        self.gate = threading.Event()
        self.gate.set()
        self.refuse: set[Any] = set()
        self.entered = threading.Event()  # a save has begun (and may be held at the gate)

    def save(self, events: list[Any]) -> None:
        self.entered.set()
        self.gate.wait()
        self.calls.append(list(events))
        if self.refuse & set(events):
            raise RuntimeError("conflict")
        self.saved.extend(events)


async def test_requests_that_arrive_while_a_write_runs_commit_together() -> None:
    store = RecordingStore()
    committer = GroupCommitter(store.save, max_batch=128)
    committer.start()
    store.gate.clear()
    first = committer.submit(["e0"])
    await asyncio.sleep(0.05)  # the writer now holds e0 and waits on the gate
    rest = [committer.submit([f"e{i}"]) for i in range(1, 51)]
    store.gate.set()
    await asyncio.gather(first, *rest)
    committer.stop()
    assert sorted(store.saved) == sorted(f"e{i}" for i in range(51))
    assert len(store.calls) == 2


async def test_what_one_turn_of_the_event_loop_submits_is_committed_together() -> None:
    """An idle writer does not commit a turn's first request alone while the turn goes on."""
    store = RecordingStore()
    committer = GroupCommitter(store.save)
    committer.start()
    first = committer.submit(["e0"])
    time.sleep(0.05)  # noqa: ASYNC251 - the rest of the turn, blocking, the GIL free
    rest = [committer.submit([f"e{i}"]) for i in range(1, 5)]
    await asyncio.gather(first, *rest)
    committer.stop()
    assert store.calls == [["e0", "e1", "e2", "e3", "e4"]]


async def test_a_future_resolves_only_after_its_events_were_saved() -> None:
    store = RecordingStore()
    committer = GroupCommitter(store.save)
    committer.start()
    store.gate.clear()
    future = committer.submit(["e1"])
    await asyncio.sleep(0.05)
    assert not future.done()
    store.gate.set()
    await future
    assert store.saved == ["e1"]
    committer.stop()


async def test_one_failing_item_fails_alone_and_the_rest_commit() -> None:
    store = RecordingStore()
    store.refuse = {"bad"}
    committer = GroupCommitter(store.save)
    committer.start()
    store.gate.clear()
    blocker = committer.submit(["first"])
    await asyncio.sleep(0.05)
    good = [committer.submit([f"ok{i}"]) for i in range(5)]
    bad = committer.submit(["bad"])
    store.gate.set()
    await asyncio.gather(blocker, *good)
    with pytest.raises(RuntimeError):
        await bad
    committer.stop()
    assert "bad" not in store.saved
    assert {f"ok{i}" for i in range(5)} <= set(store.saved)


async def test_a_full_queue_refuses_new_work_instead_of_growing() -> None:
    store = RecordingStore()
    committer = GroupCommitter(store.save, max_pending=3)
    committer.start()
    store.gate.clear()
    held = committer.submit(["held"])
    await asyncio.sleep(0.05)
    queued = [committer.submit([f"q{i}"]) for i in range(3)]
    with pytest.raises(QueueFull):
        committer.submit(["overflow"])
    store.gate.set()
    await asyncio.gather(held, *queued)
    committer.stop()


async def test_stopping_writes_everything_already_queued() -> None:
    store = RecordingStore()
    committer = GroupCommitter(store.save)
    committer.start()
    store.gate.clear()
    futures = [committer.submit([f"e{i}"]) for i in range(10)]
    stopper = asyncio.get_running_loop().run_in_executor(None, committer.stop)
    await asyncio.sleep(0.05)
    store.gate.set()
    await stopper
    await asyncio.gather(*futures)
    assert len(store.saved) == 10


async def test_what_is_submitted_in_the_turn_that_stops_the_writer_is_still_written() -> None:
    store = RecordingStore()
    committer = GroupCommitter(store.save)
    committer.start()
    future = committer.submit(["last"])
    committer.stop()  # same turn: the loop never got to hand it over
    await asyncio.wait_for(future, 5)
    assert store.saved == ["last"]


async def test_a_stopped_writer_refuses_new_work() -> None:
    committer = GroupCommitter(RecordingStore().save)
    committer.start()
    committer.stop()
    with pytest.raises(WriterStopped):
        committer.submit(["late"])


async def test_a_backlog_the_writer_has_taken_still_counts_against_the_limit() -> None:
    """The writer takes a whole backlog at once and saves it batch by batch."""
    store = RecordingStore()
    committer = GroupCommitter(store.save, max_batch=2, max_pending=4)
    committer.start()
    store.gate.clear()
    backlog = [committer.submit([f"b{i}"]) for i in range(4)]  # one turn, one hand-over
    try:
        assert await asyncio.to_thread(store.entered.wait, 5)  # saving b0, b1; b2, b3 wait
        accepted = [committer.submit(["c0"]), committer.submit(["c1"])]
        with pytest.raises(QueueFull):
            committer.submit(["c2"])
    finally:
        store.gate.set()
    await asyncio.gather(*backlog, *accepted)
    committer.stop()


async def test_a_loop_that_stops_turning_holds_back_only_its_own_requests() -> None:
    store = RecordingStore()
    committer = GroupCommitter(store.save)
    committer.start()
    submitted, release = threading.Event(), threading.Event()

    async def stuck() -> None:
        pending = committer.submit(["stuck"])
        submitted.set()
        release.wait(10)  # blocks its loop: the turn is not handed over meanwhile
        await asyncio.wait_for(pending, 5)

    other = threading.Thread(target=asyncio.run, args=(stuck(),), daemon=True)
    other.start()
    try:
        assert await asyncio.to_thread(submitted.wait, 5)
        await asyncio.wait_for(committer.submit(["free"]), 5)
        assert store.saved == ["free"]
    finally:
        release.set()
        await asyncio.to_thread(other.join, 10)
    committer.stop()
    assert store.saved == ["free", "stuck"]
