"""Analytics: the durable analytics table, kept by one process at a time, and the reports
`/admin/analytics/...` and `keyledger analytics ...` answer from it.

Folding every token event is work the token endpoint's processes should not all repeat: one
process (whichever holds the `analytics-follower` lock) follows the log and writes the
table; the others stand by and take over when it stops. Reports read the table with key
ranges, so any replica (or the CLI) answers them.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from adapters.event_store import Ledger
from adapters.named_lock import exclusive
from adapters.projection_tables import ProjectionTable, projection_table
from domain.admin_scopes import Admin, Permission
from projections.analytics import (
    ANALYTICS_TABLE,
    ANALYTICS_TOPICS,
    ANALYTICS_TRACKING,
    CLIENT,
    DAY,
    HOUR,
    AnalyticsCodec,
    AnalyticsView,
    Bucket,
    ClientActivity,
    Row,
    bucket_label,
    clients_report,
    issuance_report,
    top_clients,
)
from projections.follower import Health, LogFollower, NotificationLog

log = logging.getLogger(__name__)
LOCK = "analytics-follower"
GRANULARITIES = (HOUR, DAY)
MAX_BUCKETS = {HOUR: 24 * 31, DAY: 366}


class AnalyticsRequestError(ValueError):
    """A report asked for something it cannot give (an unknown granularity, a bad range)."""


def analytics_table(ledger: Ledger) -> ProjectionTable[Row]:
    return projection_table(ledger.datastore, ANALYTICS_TABLE, ANALYTICS_TRACKING, AnalyticsCodec())


def analytics_follower(
    ledger: Ledger, interval: float, log_: NotificationLog | None = None
) -> LogFollower[Row]:
    """The follower of the analytics table, reading `log_` (the store's own by default). The
    composition root gives it the log with the archives of months retention removed merged
    back, so that from the start of the log (a new table) their counts survive."""
    return LogFollower(
        log_ if log_ is not None else ledger,
        analytics_table(ledger),
        AnalyticsView(),
        ANALYTICS_TOPICS,
        interval,
        name="analytics-follower",
    )


class AnalyticsKeeper:
    """A thread that follows the log into the analytics table while it holds the lock."""

    def __init__(
        self,
        ledger: Ledger,
        log_: Callable[[], NotificationLog],
        interval: float = 1.0,
        retry: float = 5.0,
    ) -> None:
        self._ledger = ledger
        self._log = log_  # the log to follow, made each time this keeper starts to lead
        self._interval = interval
        self._retry = retry
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.leading = threading.Event()
        self.health = Health("analytics follower")

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="analytics-keeper", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                with exclusive(self._ledger.database_url, LOCK) as held:
                    if held:
                        self._lead()
            except Exception as exc:
                self.health.failed(exc)
            self.leading.clear()
            self._stop.wait(self._retry)

    def _lead(self) -> None:
        follower = analytics_follower(self._ledger, self._interval, self._log())
        follower.load()
        self.leading.set()
        self.health.succeeded()
        while not self._stop.wait(self._interval):
            follower.catch_up()
            self.health.succeeded()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)


def refresh(ledger: Ledger, log_: NotificationLog) -> bool:
    """Bring the table up to date here from `log_`, unless a server keeps it (then it is
    within a second or so); True if this call caught it up."""
    with exclusive(ledger.database_url, LOCK) as held:
        if held:
            analytics_follower(ledger, 1.0, log_).load()
        return held


MAX_DAYS = 36_500  # a policy longer than a century is a typo, and would overflow a date


def report_window(
    since: datetime | None, until: datetime | None, default: timedelta, now: datetime
) -> tuple[datetime, datetime]:
    """The period a report covers: `until` defaults to now, `since` to `default` before it."""
    end = until or now
    try:
        return (since or end - default), end
    except OverflowError:
        raise AnalyticsRequestError("until is too early to count back from") from None


class AnalyticsReports:
    """The reports, read from the analytics table; any admin scope may read them."""

    def __init__(self, ledger: Ledger) -> None:
        self._table = analytics_table(ledger)

    def _clients(self) -> list[ClientActivity]:
        rows = self._table.load_range(f"{CLIENT}|", f"{CLIENT}}}")  # "}" sorts after "|"
        return [r for r in rows if isinstance(r, ClientActivity)]

    def _names(self) -> dict[str, str]:
        return {c.client_id: c.name for c in self._clients()}

    def _buckets(self, granularity: str, since: datetime, until: datetime) -> list[Bucket]:
        if granularity not in GRANULARITIES:
            raise AnalyticsRequestError(f"granularity must be one of {', '.join(GRANULARITIES)}")
        if since >= until:
            raise AnalyticsRequestError("since must be before until")
        step = timedelta(hours=1) if granularity == HOUR else timedelta(days=1)
        if (until - since) / step > MAX_BUCKETS[granularity]:
            raise AnalyticsRequestError(
                f"at most {MAX_BUCKETS[granularity]} {granularity} buckets per request"
            )
        low = f"{granularity}|{bucket_label(granularity, since)}|"
        high = f"{granularity}|{bucket_label(granularity, until)}}}"
        rows = self._table.load_range(low, high)
        return [r for r in rows if isinstance(r, Bucket)]

    def issuance(
        self,
        granularity: str,
        since: datetime,
        until: datetime,
        client_id: str | None = None,
        *,
        by: Admin,
    ) -> dict[str, Any]:
        by.require(Permission.READ)
        buckets = self._buckets(granularity, since, until)
        if client_id is not None:
            buckets = [b for b in buckets if b.client_id == client_id]
        return {
            "granularity": granularity,
            "since": since.isoformat(),
            "until": until.isoformat(),
            "buckets": issuance_report(buckets, self._names()),
        }

    def top(self, since: datetime, until: datetime, limit: int, *, by: Admin) -> dict[str, Any]:
        by.require(Permission.READ)
        if not 1 <= limit <= 1000:
            raise AnalyticsRequestError("limit must be 1 to 1000")
        buckets = self._buckets(HOUR, since, until)
        return {
            "since": since.isoformat(),
            "until": until.isoformat(),
            "clients": top_clients(buckets, self._names(), limit),
        }

    def clients(
        self, now: datetime, rotation_days: int, dormant_days: int, *, by: Admin
    ) -> dict[str, Any]:
        by.require(Permission.READ)
        if not (1 <= rotation_days <= MAX_DAYS and 1 <= dormant_days <= MAX_DAYS):
            raise AnalyticsRequestError(f"rotation_days and dormant_days must be 1 to {MAX_DAYS}")
        return clients_report(self._clients(), now, rotation_days, dormant_days)
