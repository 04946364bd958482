"""The revoked-tokens read model: what introspection needs beyond the token and its client.

A token's own claims (verified signature) and its client's record (status, cut-offs) decide
almost everything; the one per-token fact is an explicit revocation. Each process holds the
revoked tokens in memory until they expire, following the log; the durable table holds the
same with its position.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from eventsourcing.utils import get_topic

from adapters.log_changes import LogChanges
from adapters.projection_tables import ProjectionTable, projection_table
from domain.token import IssuedToken
from projections.follower import LogFollower, NotificationLog

REVOKED_TOPICS = (get_topic(IssuedToken.Revoked),)


@dataclass(frozen=True)
class RevokedToken:
    """A token revoked before its expiry, keyed by its aggregate id (uuid5 of the jti)."""

    token_id: str
    client_id: str
    expires_at: datetime
    revoked_at: datetime


class RevokedTokenCodec:
    def key(self, record: RevokedToken) -> str:
        return record.token_id

    def status(self, record: RevokedToken) -> str:
        return "revoked"

    def to_json(self, record: RevokedToken) -> str:
        return json.dumps(
            {
                "token_id": record.token_id,
                "client_id": record.client_id,
                "expires_at": record.expires_at.isoformat(),
                "revoked_at": record.revoked_at.isoformat(),
            }
        )

    def from_json(self, text: str) -> RevokedToken:
        d = json.loads(text)
        return RevokedToken(
            d["token_id"],
            d["client_id"],
            datetime.fromisoformat(d["expires_at"]),
            datetime.fromisoformat(d["revoked_at"]),
        )


REVOKED_TABLE, REVOKED_TRACKING = "keyledger_revoked_tokens", "revoked-tokens"


def revoked_tokens_table(datastore: Any) -> ProjectionTable[RevokedToken]:
    return projection_table(datastore, REVOKED_TABLE, REVOKED_TRACKING, RevokedTokenCodec())


class RevokedTokensView:
    """Revoked token ids in memory: one dict lookup per introspection."""

    def __init__(self) -> None:
        self._revoked: dict[str, RevokedToken] = {}
        self.position = 0

    def get(self, key: str) -> RevokedToken | None:
        return self._revoked.get(key)

    def is_revoked(self, token_id: str) -> bool:
        return token_id in self._revoked

    def replace(self, records: Iterable[RevokedToken], position: int) -> None:
        self._revoked = {r.token_id: r for r in records}
        self.position = position

    def apply(self, event: Any, notification_id: int) -> str | None:
        self.position = notification_id
        if not isinstance(event, IssuedToken.Revoked):
            return None
        key = str(event.originator_id)
        self._revoked[key] = RevokedToken(key, event.client_id, event.expires_at, event.at)
        return key

    def prune(self, now: datetime) -> None:
        """Forget revocations of tokens that have expired anyway."""
        expired = [k for k, r in self._revoked.items() if r.expires_at <= now]
        for key in expired:
            del self._revoked[key]


class Clock(Protocol):
    def now(self) -> datetime: ...


class RevokedTokensFollower(LogFollower[RevokedToken]):
    """Follows revocations; with a clock, also forgets them once their tokens have expired."""

    PRUNE_EVERY = timedelta(minutes=1)

    def __init__(
        self,
        log_: NotificationLog,
        table: ProjectionTable[RevokedToken],
        view: RevokedTokensView,
        interval: float = 0.1,
        clock: Clock | None = None,
        changes: LogChanges | None = None,
    ) -> None:
        super().__init__(
            log_,
            table,
            view,
            REVOKED_TOPICS,
            interval,
            name="revoked-tokens-follower",
            changes=changes,
        )
        self._revoked = view
        self._clock = clock
        self._pruned_at: datetime | None = None

    def catch_up(self) -> None:
        super().catch_up()
        if self._clock is None:
            return
        now = self._clock.now()
        if self._pruned_at is None or now - self._pruned_at >= self.PRUNE_EVERY:
            self._revoked.prune(now)
            self._pruned_at = now
