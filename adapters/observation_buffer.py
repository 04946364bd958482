"""Security observations on their way to the audit topic, merged, through a bounded buffer.

`record()` is what request handlers call: it never blocks and never fails. It counts the
observation into a tally of the current window (`domain.observations.ObservationTally`: one
entry per source, client id, reason and endpoint), so a flood of bad requests becomes a few
messages with a `count`. At the end of every window (aligned to the wall clock) the tally
moves to the buffer; when the tally is full of distinct entries it moves early. When the
buffer is full (the broker is down or slow) observations are dropped, counted (each by the
requests it stands for), and a warning is logged at most every ten seconds. A task publishes
what is buffered, batch by batch, keyed by the presented client id (else the source IP); a
batch the broker did not take is retried with backoff while the buffer fills up to its bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from adapters.metrics import OBSERVATIONS_DROPPED
from domain.observations import ObservationTally, SecurityObservation

log = logging.getLogger(__name__)
BATCH_MAX = 500
DROP_LOG_INTERVAL = 10.0
CLOSE_GRACE = 0.05  # seconds after a window's end before its tally moves on


class ObservationBuffer:
    """Bounded, non-blocking intake of observations; `run()` publishes them."""

    def __init__(
        self,
        producer_factory: Callable[[], Awaitable[Any]] | None,
        *,
        encode: Callable[[SecurityObservation], tuple[bytes, bytes]],
        topic: str,
        capacity: int = 10_000,
        backoff_max: float = 30.0,
        window: int = 1,
    ) -> None:
        self._producer_factory = producer_factory
        self._topic = topic
        self.encode = encode
        self._queue: asyncio.Queue[SecurityObservation] = asyncio.Queue(maxsize=capacity)
        self._tally = ObservationTally(capacity, window)
        self._window = window
        self._backoff_max = backoff_max
        self.dropped = 0
        self.published = 0
        self.recorded = 0
        self._dropped_logged = 0
        self._last_drop_log = 0.0
        self._producer: Any = None

    @property
    def enabled(self) -> bool:
        return self._producer_factory is not None

    def record(self, observation: SecurityObservation) -> None:
        """Count an observation into this window's tally (moving a full tally on first)."""
        self.recorded += 1
        if not self.enabled:
            return
        if not self._tally.add(observation):
            self.close_window()
            self._tally.add(observation)

    def close_window(self) -> None:
        """Move the tally's merged observations to the buffer; drop (and count) what is over."""
        for observation in self._tally.drain():
            try:
                self._queue.put_nowait(observation)
            except asyncio.QueueFull:
                self._drop(observation.count)

    def _drop(self, requests: int) -> None:
        self.dropped += requests
        OBSERVATIONS_DROPPED.inc(requests)
        now = time.monotonic()
        if now - self._last_drop_log >= DROP_LOG_INTERVAL:
            log.warning(
                "security observation buffer full: %d dropped so far (%d since last said)",
                self.dropped,
                self.dropped - self._dropped_logged,
            )
            self._dropped_logged, self._last_drop_log = self.dropped, now

    async def _close_windows(self) -> None:
        """At the end of every window (wall clock, epoch-aligned), move its tally on."""
        while True:
            now = time.time()
            await asyncio.sleep(self._window - now % self._window + CLOSE_GRACE)
            self.close_window()

    async def run(self) -> None:
        """Publish buffered observations until cancelled."""
        if self._producer_factory is None:
            return
        backoff = 0.2
        closing = asyncio.create_task(self._close_windows(), name="observation-windows")
        try:
            while True:
                batch = [self.encode(await self._queue.get())]
                while len(batch) < BATCH_MAX and not self._queue.empty():
                    batch.append(self.encode(self._queue.get_nowait()))
                while True:
                    try:
                        await self._publish(batch)
                        backoff = 0.2
                        break
                    except Exception as exc:
                        log.warning(
                            "security observations not published (%s); retrying in %.1f s",
                            type(exc).__name__,
                            backoff,
                        )
                        await self._drop_producer()
                        await asyncio.sleep(backoff)
                        backoff = min(backoff * 2, self._backoff_max)
        finally:
            closing.cancel()
            await self._drop_producer()

    async def _publish(self, batch: list[tuple[bytes, bytes]]) -> None:
        if self._producer is None:
            assert self._producer_factory is not None
            self._producer = await self._producer_factory()
        deliveries = [await self._producer.send(self._topic, value, key) for key, value in batch]
        await asyncio.gather(*deliveries)
        self.published += len(batch)

    async def _drop_producer(self) -> None:
        if self._producer is not None:
            producer, self._producer = self._producer, None
            with contextlib.suppress(Exception):
                await producer.stop()
