"""Analytics read models, folded from domain events: tokens issued and revoked per client per
hour and per day (with the scopes and audiences asked for), and per client its status, the
age of its current secret and when it last got a token.

Rows are keyed so that a time range is a key range: `hour|2026-11-22T06|<client id>`,
`day|2026-11-22|<client id>`, and `client|<client id>`. The fold is pure; replaying the
same events gives the same rows.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from adapters.compact_events import EPOCH, ISSUED_TOPIC, CompactMapper, stored_topics
from domain.client import Client
from domain.token import IssuedToken

HOUR, DAY, CLIENT = "hour", "day", "client"
ANALYTICS_TABLE, ANALYTICS_TRACKING = "keyledger_analytics_v1", "analytics-v1"
ANALYTICS_EVENT_TYPES: tuple[type[Any], ...] = (
    Client.Registered,
    Client.SecretRotated,
    Client.KeysReplaced,
    Client.Suspended,
    Client.Reactivated,
    Client.Renamed,
    Client.Deleted,
    IssuedToken.Issued,
    IssuedToken.Revoked,
)
ANALYTICS_TOPICS = tuple(topic for t in ANALYTICS_EVENT_TYPES for topic in stored_topics(t))
_LENGTHS = {HOUR: 13, DAY: 10}  # of an ISO 8601 time: "2026-11-22T06" and "2026-11-22"
_HOUR_MICROS = 3_600_000_000


def bucket_label(granularity: str, at: datetime) -> str:
    """The UTC hour or day `at` falls in (a slice of its ISO form: the fold's hot path)."""
    utc = at if at.tzinfo is UTC else at.astimezone(UTC)
    return utc.isoformat()[: _LENGTHS[granularity]]


@dataclass
class Bucket:
    """Tokens of one client in one hour or day."""

    granularity: str
    bucket: str  # "2026-11-22T06" or "2026-11-22", UTC
    client_id: str
    issued: int = 0
    revoked: int = 0
    scopes: dict[str, int] = field(default_factory=dict)
    audiences: dict[str, int] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return f"{self.granularity}|{self.bucket}|{self.client_id}"


@dataclass
class ClientActivity:
    """One client: what it is called, its status, its secret's age, its last token."""

    client_id: str
    name: str
    status: str
    registered_at: datetime
    secret_generation: int
    secret_since: datetime
    last_token_at: datetime | None = None
    issued: int = 0
    revoked: int = 0

    @property
    def key(self) -> str:
        return f"{CLIENT}|{self.client_id}"


Row = Bucket | ClientActivity


class AnalyticsView:
    """Every analytics row in memory while folding; rows are written to a table by key."""

    def __init__(self) -> None:
        self._rows: dict[str, Row] = {}
        self.position = 0

    def get(self, key: str) -> Row | None:
        return self._rows.get(key)

    def all(self) -> list[Row]:
        return list(self._rows.values())

    def replace(self, records: Iterable[Row], position: int) -> None:
        self._rows = {r.key: r for r in records}
        self.position = position

    def apply(self, event: Any, notification_id: int) -> tuple[str, ...] | None:
        """Fold one event; the keys of the rows it changed."""
        self.position = notification_id
        if isinstance(event, IssuedToken.Issued):
            return self._tokens(event.client_id, event.issued_at, event.scopes, event.audience)
        if isinstance(event, IssuedToken.Revoked):
            return self._tokens(event.client_id, event.at, revoked=True)
        client_id = str(event.originator_id)
        if isinstance(event, Client.Registered):
            row = ClientActivity(
                client_id,
                event.name,
                "active",
                event.registered_at,
                secret_generation=0 if event.secret_hash is None else 1,
                secret_since=event.registered_at,  # of a private_key_jwt client: its keys' age
            )
            self._rows[row.key] = row
            return (row.key,)
        found = self._rows.get(f"{CLIENT}|{client_id}")
        if not isinstance(found, ClientActivity):
            return None
        match event:
            case Client.SecretRotated():
                found.secret_generation, found.secret_since = event.generation, event.at
            case Client.KeysReplaced():
                found.secret_since = event.at
            case Client.Suspended():
                found.status = "suspended"
            case Client.Reactivated():
                found.status = "active"
            case Client.Deleted():
                found.status = "deleted"
            case Client.Renamed():
                found.name = event.name
            case _:
                return None
        return (found.key,)

    def apply_stored(self, notification: Any, mapper: CompactMapper) -> tuple[str, ...] | None:
        """`apply` of an event as the log stores it: a compact token row is counted from its
        decoded fields, without building its event (every token issued passes here)."""
        if notification.topic != ISSUED_TOPIC:
            return self.apply(mapper.to_domain_event(notification), notification.id)
        _, fields = mapper.issued_fields(notification)
        self.position = notification.id
        micros = fields.issued_micros
        at = EPOCH + timedelta(microseconds=micros)
        labels = _hour_labels(micros // _HOUR_MICROS)
        return self._tokens(fields.client_id, at, fields.scopes, fields.audience, labels=labels)

    def _tokens(
        self,
        client_id: str,
        at: datetime,
        scopes: Sequence[str] = (),
        audience: Sequence[str] = (),
        *,
        revoked: bool = False,
        labels: tuple[str, str] | None = None,
    ) -> tuple[str, ...]:
        """Count a token issued (or revoked) at `at` in its hour, its day and its client;
        `labels`, when given, are `at`'s hour and day."""
        keys = []
        hour_label, day_label = labels or _labels(at)
        for granularity, label in ((HOUR, hour_label), (DAY, day_label)):
            key = f"{granularity}|{label}|{client_id}"
            bucket = self._rows.get(key)
            if not isinstance(bucket, Bucket):
                bucket = Bucket(granularity, label, client_id)
                self._rows[key] = bucket
            if revoked:
                bucket.revoked += 1
            else:
                bucket.issued += 1
                for scope in scopes:
                    bucket.scopes[scope] = bucket.scopes.get(scope, 0) + 1
                for name in audience:
                    bucket.audiences[name] = bucket.audiences.get(name, 0) + 1
            keys.append(key)
        activity = self._rows.get(f"{CLIENT}|{client_id}")
        if isinstance(activity, ClientActivity):
            if revoked:
                activity.revoked += 1
            else:
                activity.issued += 1
                last = activity.last_token_at
                activity.last_token_at = at if last is None or at > last else last
            keys.append(activity.key)
        return tuple(keys)


@functools.lru_cache(maxsize=1024)
def _hour_labels(hour: int) -> tuple[str, str]:
    """`_labels` of the hour `hour` hours after the epoch (tokens come a few hours at once)."""
    return _labels(EPOCH + timedelta(hours=hour))


def _labels(at: datetime) -> tuple[str, str]:
    """The UTC hour and day `at` falls in: `bucket_label` of both, from one ISO form."""
    iso = (at if at.tzinfo is UTC else at.astimezone(UTC)).isoformat()
    return iso[: _LENGTHS[HOUR]], iso[: _LENGTHS[DAY]]


class AnalyticsCodec:
    def key(self, record: Row) -> str:
        return record.key

    def status(self, record: Row) -> str:
        return record.granularity if isinstance(record, Bucket) else CLIENT

    def to_json(self, record: Row) -> str:
        # By hand, not dataclasses.asdict: its deep copies were half the cost of a rebuild.
        if isinstance(record, Bucket):
            data: dict[str, Any] = {
                "kind": record.granularity,
                "granularity": record.granularity,
                "bucket": record.bucket,
                "client_id": record.client_id,
                "issued": record.issued,
                "revoked": record.revoked,
                "scopes": record.scopes,
                "audiences": record.audiences,
            }
        else:
            last = record.last_token_at
            data = {
                "kind": CLIENT,
                "client_id": record.client_id,
                "name": record.name,
                "status": record.status,
                "registered_at": record.registered_at.isoformat(),
                "secret_generation": record.secret_generation,
                "secret_since": record.secret_since.isoformat(),
                "last_token_at": last.isoformat() if last else None,
                "issued": record.issued,
                "revoked": record.revoked,
            }
        return json.dumps(data, sort_keys=True)

    def from_json(self, text: str) -> Row:
        data = json.loads(text)
        kind = data.pop("kind")
        if kind != CLIENT:
            return Bucket(**data)
        for name in ("registered_at", "secret_since", "last_token_at"):
            if data[name] is not None:
                data[name] = datetime.fromisoformat(data[name])
        return ClientActivity(**data)


# Reports over the rows (pure: the caller reads the rows and gives the time).


def issuance_report(buckets: Iterable[Bucket], names: dict[str, str]) -> list[dict[str, Any]]:
    """One entry per bucket and client, oldest first, with the client's name."""
    return [
        {
            "bucket": b.bucket,
            "client_id": b.client_id,
            "client_name": names.get(b.client_id),
            "issued": b.issued,
            "revoked": b.revoked,
            "scopes": dict(sorted(b.scopes.items())),
            "audiences": dict(sorted(b.audiences.items())),
        }
        for b in sorted(buckets, key=lambda b: (b.bucket, b.client_id))
    ]


def top_clients(
    buckets: Iterable[Bucket], names: dict[str, str], limit: int
) -> list[dict[str, Any]]:
    totals: dict[str, int] = {}
    for b in buckets:
        totals[b.client_id] = totals.get(b.client_id, 0) + b.issued
    ranked = sorted(totals.items(), key=lambda kv: (-kv[1], kv[0]))[:limit]
    return [{"client_id": c, "client_name": names.get(c), "issued": n} for c, n in ranked]


def clients_report(
    clients: Iterable[ClientActivity], now: datetime, rotation_days: int, dormant_days: int
) -> dict[str, Any]:
    """Clients by status; per client the secret's age (and whether it is past the rotation
    policy) and its last token (dormant: none within `dormant_days`, counted from its
    registration when it never had one). Deleted clients count in `by_status` only."""
    by_status: dict[str, int] = {"active": 0, "suspended": 0, "deleted": 0}
    listed = []
    for c in sorted(clients, key=lambda c: (c.registered_at, c.client_id)):
        by_status[c.status] = by_status.get(c.status, 0) + 1
        if c.status == "deleted":
            continue
        age = now - c.secret_since
        last = c.last_token_at
        listed.append(
            {
                "client_id": c.client_id,
                "name": c.name,
                "status": c.status,
                "secret_generation": c.secret_generation,
                "secret_age_days": round(age / timedelta(days=1), 2),
                "rotation_due": age > timedelta(days=rotation_days),
                "last_token_at": last.isoformat() if last else None,
                "dormant": now - (last or c.registered_at) > timedelta(days=dormant_days),
                "tokens_issued": c.issued,
                "tokens_revoked": c.revoked,
            }
        )
    return {
        "by_status": by_status,
        "rotation_policy_days": rotation_days,
        "dormant_after_days": dormant_days,
        "clients": listed,
    }
