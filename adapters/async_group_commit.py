"""Group commit on the event loop: PostgreSQL batches written with psycopg's async API.

The thread-based `GroupCommitter` pays for every batch in GIL hand-offs between the writer
thread and the busy event loop (measured here: ≈245 µs of extra CPU per token at 2.5k
tokens/s). This writer runs as a task on the loop itself: requests append their events and
await a future; the task takes everything pending, sends it in one statement on its own
connection, and resolves the futures when the commit returned (DESIGN.md invariant 1).
While one batch is in flight the next one gathers, so batches size themselves to the load.

A batch also waits, at most `gather_wait` (1 ms by default), until as many requests are
pending as the last batch held. Without it a steady load splits into batches of whatever
arrived during the last commit, about half of what is in flight: each commit then pays
PostgreSQL's fixed cost per transaction (the WAL flush: about 60 µs of its CPU here, two
virtio kicks) and the worker's per-batch wake-ups for half as many tokens. Measured with
`serve --workers 2` and 32 connections: batches of 15.6 instead of 7.6, 204 + 30 µs of CPU
per token (server + PostgreSQL) instead of 232 + 44. The previous batch is the load's own
measure: after a burst the wait times out once and the target falls to what came; a lone
request (the last batch held one) never waits; what a wait adds to a token's latency is
bounded by `gather_wait`. PostgreSQL's own `commit_delay` does the same for concurrent
transactions; ours are one per worker, serialised by the append lock, so it cannot.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from typing import Any

import psycopg
from psycopg.errors import UniqueViolation
from psycopg.sql import Composed

from adapters.group_commit import QueueFull
from adapters.metrics import WRITE_BATCH_SIZE, WRITE_QUEUE_CAPACITY, WRITE_QUEUE_DEPTH

log = logging.getLogger(__name__)


class AsyncPostgresGroupCommitter:
    """One connection and one task per process; `submit` queues, the task commits in batches."""

    def __init__(
        self,
        conninfo: str,
        append_statement: Composed,
        mapper: Any,
        *,
        max_batch: int = 128,
        max_pending: int = 10_000,
        gather_wait: float = 0.001,
    ) -> None:
        self._conninfo = conninfo
        self._statement = append_statement
        self._mapper = mapper
        self._max_batch = max_batch
        self._max_pending = max_pending
        self._pending: list[tuple[Sequence[Any], asyncio.Future[None]]] = []
        self._wake = asyncio.Event()
        self._gather_wait = gather_wait
        self._gathered = asyncio.Event()  # set once `_gather_target` requests are pending
        self._gather_target = 0  # while a batch gathers: how many it waits for
        self._last_batch = 0
        self._conn: psycopg.AsyncConnection[Any] | None = None
        # One batch is in flight at a time: it reuses one cursor, and the statement rendered
        # once (a new cursor and rendering per batch cost a fifth of the batch's client CPU).
        self._open_cursor: psycopg.AsyncCursor[Any] | None = None
        self._query = b""
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self.batches = 0
        self.saved = 0

    @property
    def alive(self) -> bool:
        return self._task is not None and not self._task.done()

    async def start(self) -> None:
        WRITE_QUEUE_CAPACITY.set(self._max_pending)
        self._task = asyncio.create_task(self._run(), name="async-group-commit")

    def submit(self, events: Sequence[Any]) -> asyncio.Future[None]:
        if self._stopping or len(self._pending) >= self._max_pending:
            raise QueueFull
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((events, future))
        WRITE_QUEUE_DEPTH.inc()
        self._wake.set()
        if self._gather_target and len(self._pending) >= self._gather_target:
            self._gathered.set()
        return future

    async def stop(self) -> None:
        """Commit everything already queued, then close the connection."""
        self._stopping = True
        self._wake.set()
        self._gathered.set()
        if self._task is not None:
            await self._task
        await self._discard_connection()

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            await asyncio.sleep(0)  # let requests already read from their sockets join in
            while self._pending:
                await self._gather()
                batch = self._pending[: self._max_batch]
                del self._pending[: self._max_batch]
                WRITE_QUEUE_DEPTH.dec(len(batch))
                self._last_batch = len(batch)
                await self._write(batch)
            if self._stopping:
                return

    async def _gather(self) -> None:
        """Wait, at most `gather_wait`, until as many requests are pending as the last batch
        held (the module's docstring says why)."""
        target = self._last_batch  # never over `max_batch`: a batch is cut at it
        if self._stopping or self._gather_wait <= 0 or len(self._pending) >= target:
            return
        self._gathered.clear()
        self._gather_target = target
        try:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._gather_wait):
                    await self._gathered.wait()
        finally:
            self._gather_target = 0

    async def _write(self, batch: list[tuple[Sequence[Any], asyncio.Future[None]]]) -> None:
        errors = await self._commit(batch)
        self.batches += 1
        WRITE_BATCH_SIZE.observe(sum(len(events) for events, _ in batch))
        for (_, future), error in zip(batch, errors, strict=True):
            if future.cancelled():
                continue
            if error is None:
                future.set_result(None)
            else:
                future.set_exception(error)

    async def _commit(
        self, batch: list[tuple[Sequence[Any], asyncio.Future[None]]]
    ) -> list[BaseException | None]:
        """The whole batch in one statement; after a failure, each item alone."""
        try:
            await self._append([e for events, _ in batch for e in events])
        except Exception as exc:
            if len(batch) == 1:
                log.error("event write failed: %s", exc)
                return [exc]
        else:
            self.saved += len(batch)
            return [None] * len(batch)
        results: list[BaseException | None] = []
        for events, _ in batch:
            try:
                await self._append(list(events))
            except Exception as exc:
                log.error("event write failed: %s", exc)
                results.append(exc)
            else:
                self.saved += 1
                results.append(None)
        return results

    async def _append(self, events: list[Any]) -> None:
        """Append in one statement; after a lost connection, reconnect and send it again.

        The batch is one transaction of events with unique ids, so if the lost attempt did
        commit, the resend hits a unique violation on the first event: then it is stored.
        """
        stored = [self._mapper.to_stored_event(e) for e in events]
        params = (
            [s.originator_id for s in stored],
            [s.originator_version for s in stored],
            [s.topic for s in stored],
            [s.state for s in stored],
        )
        try:
            await self._execute(params, len(stored))
        except psycopg.OperationalError:
            await self._discard_connection()
            log.warning(
                "event store connection lost; reconnecting to resend %d events", len(stored)
            )
            try:
                await self._execute(params, len(stored))
            except UniqueViolation:
                return
            except psycopg.OperationalError:
                await self._discard_connection()
                raise

    async def _execute(self, params: tuple[list[Any], ...], expected: int) -> None:
        cursor = await self._cursor()
        await cursor.execute(self._query, params, prepare=True)
        rows = await cursor.fetchall()
        if len(rows) != expected:
            raise RuntimeError(f"stored {len(rows)} of {expected} events")

    async def _cursor(self) -> psycopg.AsyncCursor[Any]:
        """The connection's one cursor, and its statement rendered once, for every batch."""
        if self._open_cursor is None or self._conn is None or self._conn.closed:
            await self._discard_connection()
            self._conn = await psycopg.AsyncConnection.connect(
                self._conninfo, autocommit=True, connect_timeout=5
            )
            self._query = self._statement.as_bytes(self._conn)
            self._open_cursor = self._conn.cursor()
        return self._open_cursor

    async def _discard_connection(self) -> None:
        if self._conn is not None:
            await self._conn.close()
        self._conn = None
        self._open_cursor = None
