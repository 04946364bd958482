"""A follower whose fold fails part-way through a batch retries from the event that failed:
the events before it are folded once, so counts (the analytics table's) are not inflated."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from adapters.client_secrets import SecretHasher
from adapters.clock import FixedClock
from adapters.event_store import Ledger
from api.usecases.analytics import analytics_table
from api.usecases.client_admin import ClientAdmin
from domain.admin_scopes import Admin
from domain.client_settings import ClientSettings
from projections.analytics import ANALYTICS_TOPICS, AnalyticsView, Bucket
from projections.follower import LogFollower
from tests.backlog import issued_event

NOW = datetime(2026, 12, 4, 13, 30, tzinfo=UTC)


class FailsOnce(AnalyticsView):
    """The analytics view, failing once at one position (a store gone for a moment)."""

    def __init__(self, at: int) -> None:
        super().__init__()
        self.at, self.failed = at, False

    def apply_stored(self, notification: Any, mapper: Any) -> tuple[str, ...] | None:
        if notification.id == self.at and not self.failed:
            self.failed = True
            raise RuntimeError("the key numbers could not be read")
        return super().apply_stored(notification, mapper)


def test_a_fold_that_fails_mid_batch_counts_each_token_once_when_retried(
    tmp_path: Path,
) -> None:
    ledger = Ledger(f"sqlite:///{tmp_path}/k.db")
    try:
        admin = ClientAdmin(ledger, SecretHasher(b"p" * 32), FixedClock(NOW))
        settings = ClientSettings.create(name="c", allowed_scopes=["a"])
        client_id = admin.register(settings, by=Admin.installation("t")).client_id
        ledger.append([issued_event(client_id, NOW, ["a"], str(uuid.uuid4())) for _ in range(3)])
        head = ledger.head()
        view = FailsOnce(at=head)  # the last token: two are folded before it fails
        follower = LogFollower(ledger, analytics_table(ledger), view, ANALYTICS_TOPICS)
        with pytest.raises(RuntimeError):
            follower.catch_up()
        follower.catch_up()
        hour = view.get(f"hour|2026-12-04T13|{client_id}")
        assert isinstance(hour, Bucket)
        assert hour.issued == 3
        assert view.position == head
    finally:
        ledger.close()
