"""`keyledger projections status`: each read model's position against the head of the log."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from adapters.event_store import Ledger
from adapters.projection_tables import clients_table
from adapters.relay_store import relay_status
from api.usecases.analytics import analytics_table
from projections.analytics import ANALYTICS_TOPICS
from projections.clients import CLIENT_TOPICS
from projections.tokens import REVOKED_TOPICS, revoked_tokens_table

BATCH = 10_000


def _behind(
    ledger: Ledger, position: int, topics: Sequence[str], now: datetime
) -> tuple[int, float]:
    """Events of these topics after `position`, and the age of the oldest (0 when none)."""
    count, oldest, after = 0, None, position
    while True:
        batch = ledger.read(after, BATCH, topics=topics)
        if not batch:
            break
        if oldest is None:
            event: Any = ledger.mapper.to_domain_event(batch[0])
            oldest = event.timestamp  # eventsourcing stamps every event when it is created
        count += len(batch)
        after = batch[-1].id
    age = 0.0 if oldest is None else max(0.0, float((now - oldest).total_seconds()))
    return count, age


def projection_status(ledger: Ledger, relay_name: str, now: datetime) -> list[dict[str, Any]]:
    """Name, position, head, and how far behind each log-following projection is.

    A projection folds only the event types it needs, so its position is the last of those
    it folded, and its lag counts the events of those types it has not (in events, and the
    age of the oldest in seconds). The positions are the durable tables' (what a starting
    process resumes from); running processes hold the same models in memory, normally
    within one poll interval of the head. The relay owes every event after its position.
    """
    head = ledger.head()
    tracked: list[tuple[str, int, Sequence[str]]] = [
        ("clients", clients_table(ledger.datastore).position(), CLIENT_TOPICS),
        ("revoked-tokens", revoked_tokens_table(ledger.datastore).position(), REVOKED_TOPICS),
        ("analytics", analytics_table(ledger).position(), ANALYTICS_TOPICS),
    ]
    rows = []
    for name, position, topics in tracked:
        lag_events, lag_seconds = _behind(ledger, position, topics, now)
        rows.append(_row(name, position, head, lag_events, lag_seconds))
    return [*rows, relay_lag(ledger, relay_name, now, head)]


def relay_lag(
    ledger: Ledger, relay_name: str, now: datetime, head: int | None = None
) -> dict[str, Any]:
    """The relay's row: it owes every event after its position, so the lag is the head
    minus the position (notification ids have gaps: at most a few too many) and the age
    of the first event after it. Two reads, however far behind: a scrape stays cheap
    exactly when the relay is down."""
    head = ledger.head() if head is None else head
    position = int(relay_status(ledger, relay_name)["position"])
    first = ledger.read(position, 1) if head > position else []
    age = 0.0
    if first:
        event: Any = ledger.mapper.to_domain_event(first[0])
        age = max(0.0, float((now - event.timestamp).total_seconds()))
    return _row("audit-relay", position, head, max(0, head - position), age)


def _row(
    name: str, position: int, head: int, lag_events: int, lag_seconds: float
) -> dict[str, Any]:
    return {
        "name": name,
        "position": position,
        "head": head,
        "lag_events": lag_events,
        "lag_seconds": round(lag_seconds, 3),
    }
