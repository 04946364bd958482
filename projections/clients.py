"""The clients read model: what the token endpoint authenticates against.

Every process holds the whole model in memory and follows the notification log, so the
token endpoint never queries for a client. The same fold is written to a durable table with
its tracked position, so a process starts from the table instead of the first event.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from eventsourcing.utils import get_topic

from adapters.log_changes import LogChanges
from adapters.projection_tables import ProjectionTable
from domain.client import Client, SecretSlot
from domain.client_record import ClientRecord
from projections.follower import LogFollower, NotificationLog

CLIENT_EVENT_TYPES: tuple[type[Any], ...] = (
    Client.Registered,
    Client.SecretRotated,
    Client.KeysReplaced,
    Client.PreviousSecretRevoked,
    Client.Suspended,
    Client.Reactivated,
    Client.ScopesChanged,
    Client.TokenLifetimeChanged,
    Client.QuotasChanged,
    Client.AudiencesChanged,
    Client.Renamed,
    Client.TokensRevoked,
    Client.Deleted,
)
CLIENT_TOPICS = tuple(get_topic(t) for t in CLIENT_EVENT_TYPES)


def registered(event: Client.Registered) -> ClientRecord:
    return ClientRecord(
        client_id=str(event.originator_id),
        name=event.name,
        status="active",
        allowed_scopes=frozenset(event.allowed_scopes),
        default_scopes=frozenset(event.default_scopes),
        token_ttl=event.token_ttl,
        audiences=tuple(event.audiences),
        secrets=(
            (SecretSlot(generation=1, secret_hash=event.secret_hash, expires_at=None),)
            if event.secret_hash is not None
            else ()
        ),
        version=event.originator_version,
        registered_at=event.registered_at,
        updated_at=event.registered_at,
        auth_method=event.auth_method,
        jwks=tuple(event.jwks or ()),
        default_audience=event.default_audience,
    )


def _changes(record: ClientRecord, event: Any) -> dict[str, Any]:
    """The fields a later client event changes."""
    match event:
        case Client.SecretRotated():
            retired = record.retired_secrets
            if len(record.secrets) > 1:  # the older previous secret is dropped now
                old = record.secrets[1]
                if old.expires_at is not None and old.expires_at <= event.at:
                    retired = record.retiring(old, old.expires_at, "expired")
                else:
                    retired = record.retiring(old, event.at, "revoked")
            return {
                "retired_secrets": retired,
                "secrets": (
                    SecretSlot(event.generation, event.secret_hash, None),
                    SecretSlot(
                        event.previous_generation,
                        record.secrets[0].secret_hash,
                        event.previous_expires_at,
                    ),
                ),
            }
        case Client.PreviousSecretRevoked():
            ended = [s for s in record.secrets if s.generation == event.generation]
            return {
                "secrets": tuple(s for s in record.secrets if s.generation != event.generation),
                "retired_secrets": (
                    record.retiring(ended[0], event.at, "revoked")
                    if ended
                    else record.retired_secrets
                ),
            }
        case Client.KeysReplaced():
            return {"jwks": tuple(event.jwks)}
        case Client.Suspended():
            return {"status": "suspended"}
        case Client.Reactivated():
            return {"status": "active"}
        case Client.ScopesChanged():
            return {
                "allowed_scopes": frozenset(event.allowed_scopes),
                "default_scopes": frozenset(event.default_scopes),
            }
        case Client.TokenLifetimeChanged():
            return {"token_ttl": event.token_ttl}
        case Client.QuotasChanged():
            return {
                "tokens_per_minute": event.tokens_per_minute,
                "tokens_per_day": event.tokens_per_day,
            }
        case Client.AudiencesChanged():
            return {"audiences": tuple(event.audiences), "default_audience": event.default_audience}
        case Client.Renamed():
            return {"name": event.name}
        case Client.TokensRevoked() if event.secret_generation is None:
            before = record.tokens_revoked_before
            return {"tokens_revoked_before": max(filter(None, (before, event.cutoff)))}
        case Client.TokensRevoked(secret_generation=int(generation)):
            cutoffs = dict(record.generation_cutoffs)
            cutoffs[generation] = max(filter(None, (cutoffs.get(generation), event.cutoff)))
            return {"generation_cutoffs": tuple(sorted(cutoffs.items()))}
        case Client.Deleted():
            return {"status": "deleted", "secrets": ()}
    return {}


def evolve(record: ClientRecord | None, event: Any) -> ClientRecord | None:
    """The record after one `Client` event (a pure fold; replay gives the same record)."""
    if isinstance(event, Client.Registered):
        return registered(event)
    if record is None or not isinstance(event, Client.Changed):
        return record
    return record.evolve(
        **_changes(record, event), version=event.originator_version, updated_at=event.at
    )


class ClientsView:
    """The in-memory clients model: lock-free reads, written only by its follower."""

    def __init__(self) -> None:
        self._records: dict[str, ClientRecord] = {}
        self.position = 0

    def get(self, client_id: str) -> ClientRecord | None:
        return self._records.get(client_id)

    def all(self) -> list[ClientRecord]:
        return sorted(self._records.values(), key=lambda r: (r.registered_at, r.client_id))

    def replace(self, records: Iterable[ClientRecord], position: int) -> None:
        self._records = {r.client_id: r for r in records}
        self.position = position

    def apply(self, event: Any, notification_id: int) -> str | None:
        """Fold one event in; the id of the client it touched, if any."""
        client_id = str(event.originator_id)
        record = evolve(self._records.get(client_id), event)
        self.position = notification_id
        if record is None:
            return None
        self._records[client_id] = record
        return client_id


class ClientsFollower(LogFollower[ClientRecord]):
    """Keeps a `ClientsView` and the durable clients table up to date with the log."""

    def __init__(
        self,
        log_: NotificationLog,
        table: ProjectionTable[ClientRecord],
        view: ClientsView,
        interval: float = 0.1,
        changes: LogChanges | None = None,
    ) -> None:
        super().__init__(
            log_, table, view, CLIENT_TOPICS, interval, name="clients-follower", changes=changes
        )
