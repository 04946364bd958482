"""Reading the alerts the detector raised: any admin scope may."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from domain.admin_scopes import Admin, Permission
from domain.anomaly_detection import RULES, Alert
from domain.client_settings import InvalidClientSettings

MAX_ALERTS = 1000


class AlertLookup(Protocol):
    def alerts(
        self, *, since: datetime | None = None, rule: str | None = None, limit: int = 100
    ) -> list[Alert]: ...


class AlertQueries:
    def __init__(self, store: AlertLookup) -> None:
        self._store = store

    def recent(
        self,
        *,
        by: Admin,
        since: datetime | None = None,
        rule: str | None = None,
        limit: int = 100,
    ) -> list[Alert]:
        """Stored alerts, newest first; an unknown rule or a limit out of range is refused."""
        by.require(Permission.READ)
        if rule is not None and rule not in RULES:
            raise InvalidClientSettings(f"unknown rule {rule!r}: one of {', '.join(RULES)}")
        if not 1 <= limit <= MAX_ALERTS:
            raise InvalidClientSettings(f"limit must be 1 to {MAX_ALERTS}")
        return self._store.alerts(since=since, rule=rule, limit=limit)
