"""Group commit: concurrent requests' events are written together, each caller awaits its own.

Request handlers enqueue their events with an asyncio future. One writer thread per process
drains whatever is pending into a single transaction and resolves every future of the batch
with one `call_soon_threadsafe`. A token is answered only after its batch committed
(DESIGN.md invariant 1); one transaction per token would cap throughput at the rate at which
the event store serialises commits.

What one turn of an event loop submits reaches the writer together, at the start of that
loop's next turn, so an idle writer does not commit a turn's first request alone while the
rest of the turn waits for the next commit.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections.abc import Callable, Sequence
from typing import Any

from adapters.metrics import WRITE_BATCH_SIZE, WRITE_QUEUE_CAPACITY, WRITE_QUEUE_DEPTH

log = logging.getLogger(__name__)

Events = Sequence[Any]
Item = tuple[Events, "asyncio.Future[None]", asyncio.AbstractEventLoop]
_STOP = object()


class QueueFull(Exception):
    """More events are waiting than the writer may hold; the caller should back off."""


class WriterStopped(QueueFull):
    """The writer is stopping: it takes nothing more (the server is shutting down)."""


class GroupCommitter:
    """One writer thread that saves queued events in batches."""

    def __init__(
        self, save: Callable[[list[Any]], None], *, max_batch: int = 128, max_pending: int = 10_000
    ) -> None:
        self._save = save
        self._max_batch = max_batch
        self._max_pending = max_pending
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()  # lists of items, and _STOP
        self._lock = threading.Lock()  # the turns' items, the count pending, stopping
        # submitted in a loop's current turn, not yet handed over: one list per loop, so a
        # loop that stops turning holds back only its own requests
        self._turns: dict[asyncio.AbstractEventLoop, list[Item]] = {}
        self._pending = 0  # submitted and not yet in a batch the writer is saving
        self._stopping = False
        self._thread: threading.Thread | None = None
        self.batches = 0
        self.saved = 0

    def start(self) -> None:
        WRITE_QUEUE_CAPACITY.set(self._max_pending)
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="group-commit", daemon=True)
        self._thread.start()

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def submit(self, events: Events) -> asyncio.Future[None]:
        """Queue events for the next batch; the future resolves once they are committed."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        with self._lock:
            if self._stopping:
                raise WriterStopped
            if self._pending >= self._max_pending:
                raise QueueFull
            self._pending += 1
            turn = self._turns.setdefault(loop, [])
            turn.append((events, future, loop))
            if len(turn) == 1:  # the whole turn goes to the writer when the loop turns again
                loop.call_soon(self._hand_over, loop)  # only queues: the loop is running
            WRITE_QUEUE_DEPTH.inc()
        return future

    def _hand_over(self, loop: asyncio.AbstractEventLoop) -> None:
        with self._lock:  # queued under the lock: stop() cannot put _STOP in between
            items = self._turns.pop(loop, [])
            if items:
                self._queue.put(items)

    def stop(self) -> None:
        """Write everything already submitted, refuse more, then end the writer thread."""
        if self._thread is None:
            return
        with self._lock:
            self._stopping = True
            # turns whose loops have not handed them over yet (a loop closed without running
            # its callbacks leaves its turn here until now)
            for items in self._turns.values():  # never empty: a turn is made with its item
                self._queue.put(items)
            self._turns.clear()
            self._queue.put(_STOP)
        self._thread.join(timeout=30)
        self._thread = None

    def _run(self) -> None:
        stopping = False
        while not stopping:
            taken = [self._queue.get()]
            while True:  # and whatever else is waiting
                try:
                    taken.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            stopping = _STOP in taken
            items = [item for items in taken if items is not _STOP for item in items]
            for start in range(0, len(items), self._max_batch):
                batch = items[start : start + self._max_batch]
                with self._lock:  # the rest of a backlog still counts against max_pending
                    self._pending -= len(batch)
                WRITE_QUEUE_DEPTH.dec(len(batch))
                self._write(batch)

    def _write(self, batch: list[Item]) -> None:
        results = self._commit(batch)
        self.batches += 1
        WRITE_BATCH_SIZE.observe(sum(len(events) for events, _, _ in batch))
        by_loop: dict[Any, list[tuple[asyncio.Future[None], BaseException | None]]] = {}
        for (_, future, loop), error in zip(batch, results, strict=True):
            by_loop.setdefault(loop, []).append((future, error))
        for loop, outcomes in by_loop.items():
            try:
                loop.call_soon_threadsafe(_resolve, outcomes)
            except RuntimeError:
                log.warning("event loop closed before %d commits were reported", len(outcomes))

    def _commit(self, batch: list[Item]) -> list[BaseException | None]:
        """Save the batch at once; if that fails, each item alone so one bad item fails alone."""
        try:
            self._save([e for events, _, _ in batch for e in events])
        except Exception as exc:
            if len(batch) == 1:
                log.error("event write failed: %s", exc)
                return [exc]
        else:
            self.saved += len(batch)
            return [None] * len(batch)
        results: list[BaseException | None] = []
        for events, _, _ in batch:
            try:
                self._save(list(events))
            except Exception as exc:
                log.error("event write failed: %s", exc)
                results.append(exc)
            else:
                self.saved += 1
                results.append(None)
        return results


def _resolve(outcomes: list[tuple[asyncio.Future[None], BaseException | None]]) -> None:
    for future, error in outcomes:
        if future.cancelled():
            continue
        if error is None:
            future.set_result(None)
        else:
            future.set_exception(error)
