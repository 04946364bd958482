"""Per-client issuance quotas (issue 6, part 8): tokens per minute and per day.

Fixed windows: the UTC minute and the UTC day the request falls in, so a quota of 10 per
minute gives exactly 10 tokens in any calendar minute, and `Retry-After` is the time to the
window's end. Counters are per process (per-replica budgets): each of `processes` processes
admits `limit // processes` (at least one), so together they never admit more than the limit,
and exactly the limit when it divides evenly and the load is spread evenly. Only clients
with a quota pay for the check.
"""

from __future__ import annotations

from datetime import datetime

MINUTE = 60
DAY = 86_400


class IssuanceQuotas:
    def __init__(self, processes: int = 1) -> None:
        self._processes = processes
        self._counts: dict[str, tuple[int, int, int, int]] = {}  # minute, n, day, n

    def _budget(self, limit: int) -> int:
        return max(1, limit // self._processes)

    def take(
        self, client_id: str, per_minute: int | None, per_day: int | None, now: datetime
    ) -> tuple[str, int] | None:
        """Count one token, or (the quota reached, seconds until it resets) and count nothing."""
        epoch = int(now.timestamp())
        minute, day = epoch // MINUTE, epoch // DAY
        last_minute, in_minute, last_day, in_day = self._counts.get(client_id, (minute, 0, day, 0))
        in_minute = in_minute if last_minute == minute else 0
        in_day = in_day if last_day == day else 0
        if per_minute is not None and in_minute >= self._budget(per_minute):
            return "quota_per_minute", (minute + 1) * MINUTE - epoch
        if per_day is not None and in_day >= self._budget(per_day):
            return "quota_per_day", (day + 1) * DAY - epoch
        self._counts[client_id] = (minute, in_minute + 1, day, in_day + 1)
        return None
