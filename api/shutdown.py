"""Stopping within seconds of SIGTERM (or Ctrl-C), whatever the database or broker is doing.

A long-running process stops in two steps. Its loops are asked to stop and get `GRACE`
seconds to finish what they are doing (store a position, leave a consumer group); a loop
still waiting then, for a broker that never answers say, is cancelled. And at the signal a
deadline is armed: a thread inside a call that cannot be cancelled (a database call retrying
against a server that is gone) would hold the process for minutes, so `EXIT_DEADLINE` seconds
after the signal the process says so and exits with the signal's conventional status
(128 + its number), as if the signal had ended it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Collection, Sequence
from types import FrameType
from typing import Any, Protocol

log = logging.getLogger("keyledger")

GRACE = 2.0  # seconds a loop gets to stop by itself before it is cancelled
EXIT_DEADLINE = 6.0  # seconds from the signal to the exit, come what may
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
_armed = threading.Event()


def arm_exit_deadline(signum: int, seconds: float = EXIT_DEADLINE) -> None:
    """From now on, the process ends within `seconds` (once armed, later calls change nothing)."""
    if _armed.is_set():
        return
    _armed.set()
    timer = threading.Timer(seconds, _exit_now, args=(signum, seconds))
    timer.daemon = True
    timer.start()


def _exit_now(signum: int, seconds: float) -> None:
    log.warning(
        "still stopping %.0f s after %s: exiting now; calls to the database or broker that "
        "have not returned are abandoned",
        seconds,
        signal.Signals(signum).name,
    )
    for handler in logging.getLogger().handlers:
        with contextlib.suppress(Exception):
            handler.flush()
    os._exit(128 + signum)


def chain_exit_deadline() -> None:
    """Arm the deadline from the stop signals' current handlers (uvicorn's), which still run.
    Main thread only; a signal left to its default action needs no deadline."""
    if threading.current_thread() is not threading.main_thread():
        return
    for signum in STOP_SIGNALS:
        previous = signal.getsignal(signum)
        if not callable(previous):
            continue

        def handler(
            sig: int, frame: FrameType | None, previous: Callable[..., Any] = previous
        ) -> None:
            arm_exit_deadline(sig)
            previous(sig, frame)

        signal.signal(signum, handler)


class Service(Protocol):
    async def run(self) -> None: ...

    def stop(self) -> None: ...


async def run_until_signalled(service: Service, grace: float = GRACE) -> None:
    """Run `service` until SIGTERM or SIGINT: then `stop()`, and after `grace` seconds (or a
    second signal) cancel it; the exit deadline is armed at the first signal."""
    loop = asyncio.get_running_loop()
    running = asyncio.ensure_future(service.run())
    signalled: list[int] = []

    def on_signal(signum: int) -> None:
        if signalled:  # a second signal: no more waiting
            running.cancel()
            return
        signalled.append(signum)
        arm_exit_deadline(signum)
        service.stop()
        loop.call_later(grace, running.cancel)

    for signum in STOP_SIGNALS:
        loop.add_signal_handler(signum, on_signal, signum)
    try:
        await asyncio.wait({running})
    finally:
        if not running.done():  # this coroutine itself was cancelled
            running.cancel()
    if running.cancelled():
        log.warning("stopped after %s by cancelling what it still waited for", _name(signalled))
        return
    running.result()


def _name(signalled: list[int]) -> str:
    return signal.Signals(signalled[0]).name if signalled else "the stop"


async def finish_or_cancel(tasks: Collection[asyncio.Task[Any]], grace: float = GRACE) -> None:
    """Wait up to `grace` for `tasks` (already asked to stop); cancel those still running.
    Their errors are retrieved here, so none is reported later as never retrieved."""
    if not tasks:
        return
    _, pending = await asyncio.wait(tasks, timeout=grace)
    for task in pending:
        log.warning("%s did not stop within %.0f s: cancelled", task.get_name(), grace)
        task.cancel()
    if pending:
        await asyncio.wait(pending, timeout=1.0)
    for task in tasks:
        if task.done() and not task.cancelled():
            task.exception()


def call_all_within(calls: Sequence[Callable[[], object]], seconds: float = GRACE) -> bool:
    """Run blocking stop calls side by side, for at most `seconds` in all; True if all
    returned. A call still running is left to the process's exit (its thread is a daemon)."""
    threads = [threading.Thread(target=_quietly, args=(call,), daemon=True) for call in calls]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + seconds
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    return not any(thread.is_alive() for thread in threads)


def _quietly(call: Callable[[], object]) -> None:
    try:
        call()
    except Exception as exc:
        log.warning("while stopping: %s: %s", type(exc).__name__, exc)
