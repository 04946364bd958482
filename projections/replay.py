"""Replaying a projection from the first event: the catalog of rebuildable read models, and
the fold of a history (the whole of it, or up to a moment) into a fresh view."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

from adapters.projection_tables import (
    CLIENT_CODEC,
    CLIENTS_TABLE,
    CLIENTS_TRACKING,
    Codec,
)
from domain.client import Client, event_time
from domain.token import IssuedToken
from projections.analytics import (
    ANALYTICS_TABLE,
    ANALYTICS_TOPICS,
    ANALYTICS_TRACKING,
    AnalyticsCodec,
    AnalyticsView,
)
from projections.clients import CLIENT_TOPICS, ClientsView
from projections.follower import View, touched_keys
from projections.tokens import (
    REVOKED_TABLE,
    REVOKED_TOPICS,
    REVOKED_TRACKING,
    RevokedTokenCodec,
    RevokedTokensView,
)

R = TypeVar("R")
Row = tuple[str, str, str]


@dataclass(frozen=True)
class ProjectionSpec(Generic[R]):
    """A read model that can be rebuilt: its table, tracking name, events and fold."""

    name: str
    table: str
    tracking: str
    topics: tuple[str, ...]
    codec: Codec[R]
    new_view: Callable[[], View[R]]


CATALOG: dict[str, ProjectionSpec[Any]] = {
    spec.name: spec
    for spec in (
        ProjectionSpec(
            "clients", CLIENTS_TABLE, CLIENTS_TRACKING, CLIENT_TOPICS, CLIENT_CODEC, ClientsView
        ),
        ProjectionSpec(
            "analytics",
            ANALYTICS_TABLE,
            ANALYTICS_TRACKING,
            ANALYTICS_TOPICS,
            AnalyticsCodec(),
            AnalyticsView,
        ),
        ProjectionSpec(
            "revoked-tokens",
            REVOKED_TABLE,
            REVOKED_TRACKING,
            REVOKED_TOPICS,
            RevokedTokenCodec(),
            RevokedTokensView,
        ),
    )
}


def occurred_at(event: Any) -> datetime:
    """When a domain event happened, by the time its command recorded."""
    if isinstance(event, Client.Registered | Client.Changed):
        return event_time(event)
    if isinstance(event, IssuedToken.Issued):
        return event.issued_at
    if isinstance(event, IssuedToken.Revoked):
        return event.at
    stamp: datetime = event.timestamp
    return stamp


class Replay(Generic[R]):
    """Folds notifications into a fresh view; with `until`, only events that happened by then."""

    def __init__(self, spec: ProjectionSpec[R], mapper: Any, until: datetime | None = None):
        self.spec = spec
        self.view = spec.new_view()
        self._mapper = mapper
        self._until = until
        self.touched: set[str] = set()
        self.events = 0

    def fold(self, notifications: Sequence[Any]) -> set[str]:
        """Fold a batch in order; the keys it changed."""
        changed: set[str] = set()
        for notification in notifications:
            event = self._mapper.to_domain_event(notification)
            if self._until is not None and occurred_at(event) > self._until:
                continue
            changed.update(touched_keys(self.view.apply(event, notification.id)))
            self.events += 1
        self.touched |= changed
        return changed

    def rows(self, keys: Iterable[str] | None = None) -> list[Row]:
        """Table rows for `keys` (default: every record the replay produced)."""
        codec = self.spec.codec
        records = (self.view.get(k) for k in sorted(self.touched if keys is None else keys))
        return [(codec.key(r), codec.status(r), codec.to_json(r)) for r in records if r]
