"""Waits a Kafka service abandons at once when asked to stop: starting a client against a
broker that does not answer, a retry's back-off, closing a client that cannot flush. Nothing
is lost by abandoning them; what the service did is stored before it waits."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable
from typing import TypeVar

T = TypeVar("T")
CLOSE_TIMEOUT = 2.0  # seconds a client gets to close (flush, leave its group)


class Stopped(Exception):
    """The service was asked to stop while it waited."""


async def unless_stopped(stopping: asyncio.Event, work: Awaitable[T]) -> T:
    """The result of `work`; if `stopping` is set first, `work` is cancelled and `Stopped`
    raised."""
    task = asyncio.ensure_future(work)
    stop = asyncio.ensure_future(stopping.wait())
    try:
        await asyncio.wait({task, stop}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stop.cancel()
        if not task.done():
            task.cancel()
    if task.done() and not task.cancelled():
        return task.result()
    await asyncio.wait({task}, timeout=CLOSE_TIMEOUT)  # its own clean-up, bounded
    if task.done() and not task.cancelled():
        task.exception()  # retrieved: a failure while being cancelled is no news
    raise Stopped


async def sleep_unless_stopped(stopping: asyncio.Event, seconds: float) -> None:
    """Sleep `seconds`, or until `stopping` is set."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stopping.wait(), seconds)


async def close_within(closing: Awaitable[object], seconds: float = CLOSE_TIMEOUT) -> None:
    """Close a client, giving up after `seconds` (a broker that never answers) or on error."""
    with contextlib.suppress(Exception):
        await asyncio.wait_for(closing, seconds)
