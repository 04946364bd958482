"""`keyledger retention run`: archive, then remove, each month of token events whose tokens
have all been expired for the retention period (issue 17).

For each such month, in order: its archive is written and verified; every follower that
needs its events (the audit relay, the read models that fold token events, the ledger's
tree) must be past the last of them; the removal is recorded as an event naming the archive;
then the events leave (a dropped month table on PostgreSQL, bounded batches on SQLite). A
run that stops anywhere leaves either nothing removed (no event yet) or a recorded removal
that the next run finishes. One runner at a time across replicas (a named lock).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta

from eventsourcing.application import AggregateNotFoundError

from api.usecases.ports import (
    ArchiveManifest,
    Clock,
    DatabaseClock,
    EventStore,
    TokenArchives,
    TokenEvents,
)
from domain.token_periods import TokenPeriod, removable_periods
from domain.token_retention import (
    TOKEN_RETENTION_ID,
    ArchiveError,
    ArchiveMismatch,
    RemovedPeriod,
    TokenRetention,
)

log = logging.getLogger("keyledger")


class AnotherRunner(Exception):
    """Another retention run holds the lock."""


class ClocksDisagree(Exception):
    """This machine's clock and the database's differ by more than `MAX_CLOCK_SKEW`."""


# Retention removes by the clock: a runner whose clock ran ahead would remove months early.
MAX_CLOCK_SKEW = timedelta(minutes=5)


class FollowersBehind(Exception):
    """A follower still owes events of the period: removing them now would lose them."""


@dataclass(frozen=True)
class Removal:
    period: str
    events: int
    tokens: int
    archive: str
    removed: int
    finished_earlier_run: bool = False


@dataclass(frozen=True)
class HeldBack:
    """A month the run left in the store, and why."""

    period: str
    reason: str


@dataclass(frozen=True)
class RunResult:
    """What a run removed, and the months it held back while the others went on."""

    removed: tuple[Removal, ...] = ()
    held_back: tuple[HeldBack, ...] = ()


@dataclass(frozen=True)
class Planned:
    period: str
    removable_since: datetime
    recorded: bool  # removed by an earlier run that stopped before the events all left


# name of a follower -> whether it has passed this position
Followers = Callable[[int], list[str]]


class TokenRetentionRun:
    """Retention over one store. It goes by this machine's clock once the database's agrees
    (`MAX_CLOCK_SKEW`): every run and every plan asks both first."""

    def __init__(
        self,
        ledger: EventStore,
        rows: TokenEvents,
        archives: TokenArchives,
        followers_behind: Followers,
        lock: Callable[[], AbstractContextManager[bool]],
        retention: timedelta,
        *,
        clock: Clock,
        database_clock: DatabaseClock,
    ) -> None:
        self._ledger = ledger
        self._rows = rows
        self._archives = archives
        self._behind = followers_behind
        self._lock = lock
        self._retention = retention
        self._clock = clock
        self._database_clock = database_clock

    def _now(self) -> datetime:
        """This machine's time, once the database's clock agrees with it."""
        now, database = self._clock.now(), self._database_clock.now()
        if abs(now - database) > MAX_CLOCK_SKEW:
            raise ClocksDisagree(
                f"this machine's clock says {now.isoformat()}, the database's "
                f"{database.isoformat()}: retention removes months by the clock, so it does not "
                f"run until they agree within {MAX_CLOCK_SKEW.seconds // 60} minutes"
            )
        return now

    def _retention_record(self, now: datetime) -> TokenRetention:
        try:
            found: object = self._ledger.repository.get(TOKEN_RETENTION_ID)
        except AggregateNotFoundError:
            return TokenRetention(at=now)
        assert isinstance(found, TokenRetention)
        return found

    def _periods(self, record: TokenRetention, now: datetime) -> Iterator[TokenPeriod]:
        """The periods past retention that may still hold events: those recorded but perhaps
        unfinished, then every one from the oldest token still stored."""
        for name in sorted(record.removed):
            yield TokenPeriod.named(name)
        first = self._rows.first_period()
        if first is not None:
            for period in removable_periods(first, now, self._retention):
                if period.name not in record.removed:
                    yield period

    def plan(self) -> list[Planned]:
        """What a run now would remove (`--dry-run`): nothing is written."""
        now = self._now()
        record = self._retention_record(now)
        planned = []
        for period in self._periods(record, now):
            if next(self._rows.period(period, batch=1), None) is None:
                continue
            planned.append(
                Planned(
                    period.name, period.removable_at(self._retention), period.name in record.removed
                )
            )
        return planned

    def run(self, actor: str) -> RunResult:
        now = self._now()
        with self._lock() as held:
            if not held:
                raise AnotherRunner("another retention run holds the lock; try again later")
            record = self._retention_record(now)
            removed, held_back = [], []
            for period in list(self._periods(record, now)):
                try:
                    removal = self._remove(record, period, now, actor)
                except ArchiveMismatch as mismatch:  # that month stays; the others go on
                    held_back.append(HeldBack(period.name, str(mismatch)))
                    continue
                if removal is not None:
                    removed.append(removal)
            self._rows.prepare_months(TokenPeriod.of(now))
            return RunResult(tuple(removed), tuple(held_back))

    def _remove(
        self, record: TokenRetention, period: TokenPeriod, now: datetime, actor: str
    ) -> Removal | None:
        done = record.archive_of(period)
        if done is None:
            return self._archive_and_remove(record, period, now, actor)
        # Recorded by an earlier run that stopped: finish it, never past the archive's last
        # position (an event that came later is in no archive, and stays).
        removed = self._rows.remove(period, done.events, done.last_position or 0)
        if not removed:
            return None
        return Removal(period.name, done.events, done.tokens, done.archive, removed, True)

    def _archive_and_remove(
        self, record: TokenRetention, period: TokenPeriod, now: datetime, actor: str
    ) -> Removal | None:
        if next(self._rows.period(period, batch=1), None) is None:
            return None  # no token of that month is stored: nothing to archive
        # Not removed yet: the store holds the period whole, so an older archive is replaced.
        manifest = self._archives.write(period, self._rows.period(period), now, replace=True)
        _, problems = self._archives.verify(period)
        if problems:
            raise ArchiveError(f"the archive of {period} does not verify: {'; '.join(problems)}")
        self._check_followers(period, manifest)
        record.remove(
            period=period,
            archive=self._archives.location(period),
            sha256=manifest.sha256,
            events=manifest.events,
            tokens=manifest.tokens,
            first_position=manifest.first_position,
            last_position=manifest.last_position,
            retention=self._retention,
            now=now,
            actor=actor,
        )
        self._ledger.save(record)
        assert manifest.last_position is not None  # the period holds events: checked above
        removed = self._rows.remove(period, manifest.events, manifest.last_position)
        return Removal(
            period.name, manifest.events, manifest.tokens, self._archives.location(period), removed
        )

    def _check_followers(self, period: TokenPeriod, manifest: ArchiveManifest) -> None:
        assert manifest.last_position is not None
        behind = self._behind(manifest.last_position)
        if behind:
            raise FollowersBehind(
                f"{', '.join(behind)} not past position {manifest.last_position} yet: "
                f"{period} stays (its archive is written) until they are"
            )


class RetentionSchedule:
    """`retention run` inside `serve` (KEYLEDGER_RETENTION_IN_SERVE): once a few seconds after
    start, then every `interval` seconds, on a thread of its own; the named lock lets one
    replica run at a time, the others find nothing left or the lock taken."""

    def __init__(
        self, runner: TokenRetentionRun, interval: float, first_after: float = 5.0
    ) -> None:
        self._runner = runner
        self._interval = interval
        self._first_after = first_after
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.runs = 0

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="token-retention", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()  # a run in progress finishes its current month; the thread is a daemon

    def _loop(self) -> None:
        wait = self._first_after
        while not self._stop.wait(wait):
            self.run_once()
            wait = self._interval

    def run_once(self) -> None:
        try:
            result = self._runner.run("keyledger serve")
        except ClocksDisagree as disagree:
            log.error("token retention does not run: %s", disagree)
        except AnotherRunner:
            log.info("token retention: another replica is running it")
        except FollowersBehind as behind:
            log.warning("token retention waits: %s", behind)
        except Exception:
            log.exception("token retention failed; it runs again in %.0f s", self._interval)
        else:
            for r in result.removed:
                log.info(
                    "token retention removed %s: %d events of %d tokens, archived in %s",
                    r.period,
                    r.removed,
                    r.tokens,
                    r.archive,
                )
            for h in result.held_back:
                log.warning("token retention held %s back: %s", h.period, h.reason)
        finally:
            self.runs += 1


def removed_periods(ledger: EventStore) -> list[RemovedPeriod]:
    """Every period retention removed from this store, oldest first."""
    try:
        found: object = ledger.repository.get(TOKEN_RETENTION_ID)
    except AggregateNotFoundError:
        return []
    assert isinstance(found, TokenRetention)
    return [found.removed[name] for name in sorted(found.removed)]
