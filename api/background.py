"""The work that follows the log after each token: the audit relay, the analytics table, the
ledger's tree and checkpoints, and scheduled retention.

`keyledger serve` runs it in one process of its own beside the request workers
(`KEYLEDGER_BACKGROUND_JOBS=process`), so that it never holds a worker's interpreter while
that worker answers a request, or as threads inside every request worker (`workers`). Each
job elects itself (a lock per relay, analytics table and ledger), so either way one of each
runs per installation. `auto`, the default, is the process, as measured on two cores:

- one worker (SQLite's default): the jobs cost about a quarter of its CPU per token; in a
  process of their own, 1.3 times the tokens/s with half the p99;
- two workers on PostgreSQL: the elections put all the jobs in whichever worker asked first,
  whose requests then waited for the GIL. In a process of their own: p99 19.6, 24.7 and
  19.3 ms against 27.0, 25.7 and 25.6 with threads (alternating 15 s runs), and 4,367, 3,524
  and 4,686 tokens/s against 4,173, 3,613 and 4,340.

The process is stopped as soon as the server is signalled (beside the workers' graceful
stop, not after it), is never restarted once the server stops, does not start if serve died
before the process could ask to die with it. It reports its jobs' failures to the workers
every second (api/background_status.py): /readyz on any worker names them, and names the
process once it has not reported for a while; beside a single worker, at once while it is down.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from api import background_status, shutdown
from api.settings import Settings
from projections.follower import Health

if TYPE_CHECKING:
    from api.usecases.analytics import AnalyticsKeeper
    from api.usecases.token_retention import RetentionSchedule
    from projections.audit_relay import AuditRelay
    from projections.ledger_service import LedgerService

log = logging.getLogger(__name__)

RESTART_AFTER = (1.0, 30.0)  # seconds before restarting a process that exited: first, most
STABLE_AFTER = 5.0  # seconds a (re)started process runs before it counts as recovered
LONG_RUN = 60.0  # seconds of running after which a failure restarts after the first pause
STOP_GRACE = 0.5  # seconds for a stop signal to follow an exit (Ctrl-C reaches both)
PROCESS_NAME = "keyledger-background"

# The background process of this serve process, as /readyz reports it: set while a keeper
# runs. Only a worker in the same process (a single worker) sees it.
_keeper_health: Health | None = None


def keeper_health() -> Health | None:
    """The health of this process's background process, while serve keeps one here."""
    return _keeper_health


@dataclass
class BackgroundJobs:
    """The jobs one process runs, started and stopped together (each may be off: None)."""

    relay: AuditRelay | None = None
    analytics: AnalyticsKeeper | None = None
    ledger_service: LedgerService | None = None
    retention: RetentionSchedule | None = None
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _stopping: asyncio.Event | None = None

    @property
    def healths(self) -> list[Health]:
        """The health of each job that keeps one (what the status report names)."""
        return [j.health for j in (self.analytics, self.ledger_service) if j is not None]

    @property
    def names(self) -> list[str]:
        jobs = {
            "audit relay": self.relay,
            "analytics": self.analytics,
            "ledger": self.ledger_service,
            "retention": self.retention,
        }
        return [name for name, job in jobs.items() if job is not None]

    async def start(self) -> None:
        if self.analytics is not None:
            self.analytics.start()
        if self.ledger_service is not None:
            self._tasks.append(asyncio.create_task(self.ledger_service.run(), name="ledger"))
        if self.retention is not None:
            self.retention.start()
        if self.relay is not None:
            self._tasks.append(asyncio.create_task(self.relay.run(), name="audit-relay"))

    async def stop(self) -> None:
        """Stop the loops on this event loop, each bounded (api/shutdown.py); the threads
        are the caller's to stop, with its own (`thread_stops`)."""
        for job in (self.relay, self.ledger_service, self.retention):
            if job is not None:
                job.stop()
        await shutdown.finish_or_cancel(self._tasks)

    @property
    def thread_stops(self) -> list[Callable[[], object]]:
        return [self.analytics.stop] if self.analytics is not None else []

    async def run(self) -> None:
        """Start, run until `stop_running()`, then stop: a service for `run_until_signalled`."""
        self._stopping = asyncio.Event()
        await self.start()
        await self._stopping.wait()

    def stop_running(self) -> None:
        if self._stopping is not None:
            self._stopping.set()


class _Signalled:
    """`BackgroundJobs` as `run_until_signalled` drives a service: `run()` and `stop()`."""

    def __init__(self, jobs: BackgroundJobs) -> None:
        self.jobs = jobs

    async def run(self) -> None:
        await self.jobs.run()

    def stop(self) -> None:
        self.jobs.stop_running()


def run_process(parent: int) -> None:
    """The background process: the jobs of `keyledger serve`'s settings (from the environment
    it inherited) until SIGTERM or SIGINT. Logs as the workers do. It dies with `parent`, and
    does not start if `parent` died before it could ask for that (it was orphaned)."""
    from adapters.kafka import die_with_parent

    die_with_parent()
    if os.getppid() != parent:
        return
    import uvloop

    from api.bootstrap import background_jobs, open_ledger, tracing_for
    from api.http.worker_tuning import settle_heap
    from api.logs import configure_logging

    settings = Settings.from_env()
    configure_logging(settings.log_level, json_lines=settings.log_format == "json")
    tracing = tracing_for(settings, "serve")  # the relay's spans, as when it ran in a worker

    async def run() -> None:
        ledger = open_ledger(settings)
        jobs = background_jobs(settings, ledger, tracing=tracing)
        settle_heap()  # the jobs allocate per event, as a worker does per request
        log.info("background process %d running: %s", os.getpid(), ", ".join(jobs.names))
        reporting = asyncio.create_task(_report_status(jobs), name="status-report")
        try:
            await shutdown.run_until_signalled(_Signalled(jobs))
        finally:
            reporting.cancel()
            await jobs.stop()
            if shutdown.call_all_within([*jobs.thread_stops, tracing.shutdown]):
                ledger.close()

    uvloop.run(run())  # the workers' loop: the relay's producer ran on it in a worker


async def _report_status(jobs: BackgroundJobs) -> None:
    """Tell the workers how the jobs are doing, every `REPORT_EVERY` seconds, until cancelled."""
    path = background_status.reported_path()
    if path is None:  # started by hand, not by serve
        return
    while True:
        try:
            background_status.report(path, jobs.healths)
        except OSError as exc:  # the file went with serve: nobody is reading any more
            log.debug("status not reported: %s", exc)
        await asyncio.sleep(background_status.REPORT_EVERY)


@contextlib.contextmanager
def background_process(settings: Settings) -> Iterator[Callable[[], None]]:
    """Keep serve's background process running (restarted, after a pause, if it exits) while
    the server runs; then stop it with SIGTERM, and kill it past the exit deadline. Yields
    what the server calls when a stop signal arrives: SIGTERM to the process at once, so its
    own stop runs beside the workers' instead of after it, and no restart from then on."""
    if not settings.jobs_in_own_process or not any_jobs(settings):
        yield lambda: None
        return
    global _keeper_health
    with background_status.status_file():  # before the process and the workers start
        keeper = _ProcessKeeper()
        _keeper_health = keeper.health
        keeper.start()
        try:
            yield keeper.stop_soon
        finally:
            keeper.stop()
            _keeper_health = None


def any_jobs(settings: Settings) -> bool:
    return (
        (settings.kafka_enabled and settings.relay_in_serve)
        or settings.analytics_in_serve
        or settings.ledger_in_serve
        or settings.retention_in_serve
    )


class ProcessExited(Exception):
    def __init__(self, code: int | None) -> None:
        super().__init__(f"exited with code {code}; restarting it")


class _ProcessKeeper:
    def __init__(self) -> None:
        self._context = multiprocessing.get_context("spawn")
        self._stopped = threading.Event()
        self._process: Any = None
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._keep, name=PROCESS_NAME, daemon=True)
        self.health = Health("background process")

    def start(self) -> None:
        self._thread.start()

    def _keep(self) -> None:
        """Start the process, wait for it (only this thread reaps it), and start it again
        after a pause that doubles while it keeps failing early (reset by a long run)."""
        pause = RESTART_AFTER[0]
        while True:
            process = self._context.Process(
                target=run_process, args=(os.getpid(),), name=PROCESS_NAME
            )
            with self._lock:
                if self._stopped.is_set():
                    return
                process.start()
                self._process = process  # published started: stop_soon may signal it now
            if self._stopped.is_set():  # a stop signal came between the check and here
                process.terminate()
            started = time.monotonic()
            process.join(STABLE_AFTER)
            if process.exitcode is None:
                self.health.succeeded()
                process.join()
            ran = time.monotonic() - started
            # Ctrl-C reaches the whole process group: the process may exit just before the
            # server is signalled. Any other exit is a failure, reported until it runs again.
            if self._stopped.wait(STOP_GRACE):
                return
            self.health.failed(ProcessExited(process.exitcode))  # logged once a kind
            pause = RESTART_AFTER[0] if ran > LONG_RUN else pause
            log.info("starting the background process again in %.0f s", pause)
            if self._stopped.wait(pause):
                return
            pause = min(pause * 2, RESTART_AFTER[1])

    def stop_soon(self) -> None:
        """SIGTERM to the process, and no restart after it: called from a signal handler,
        so it takes no lock (the keeper's thread may hold it) and never raises."""
        self._stopped.set()
        process = self._process
        if process is not None:
            with contextlib.suppress(Exception):
                process.terminate()  # nothing once the keeper's thread has reaped it

    def stop(self) -> None:
        """SIGTERM to the process; SIGKILL if it has not exited by the exit deadline."""
        with self._lock:
            self._stopped.set()
            process = self._process
        if process is None:
            return
        process.terminate()
        self._thread.join(shutdown.EXIT_DEADLINE + 1)
        if self._thread.is_alive():
            log.warning("the background process did not stop in time; killing it")
            process.kill()
            self._thread.join(5)
