"""The audit stream's message format: CloudEvents 1.0 structured JSON, one per domain event.

`id` is derived from the event's aggregate id and version, so the same event always has the
same id (consumers deduplicate by it); `sequence` is the store's notification id; `subject`
is the client id; `data` holds the event's fields with the actor and reason, and never a
secret hash. Every type has a JSON Schema under `schemas/`, generated from the event classes
(`make schemas`) and checked against them by the tests.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from domain.client import Client, event_time
from domain.token import IssuedToken

SPEC_VERSION = "1.0"
_EVENT_IDS = uuid5(NAMESPACE_URL, "urn:keyledger:audit-event")
NOT_PUBLISHED = {
    "originator_id",
    "originator_version",
    "originator_topic",
    "timestamp",
    "secret_hash",
}

AUDIT_TYPES: dict[type[Any], str] = {
    Client.Registered: "keyledger.client.registered.v1",
    Client.SecretRotated: "keyledger.client.secret_rotated.v1",
    Client.PreviousSecretRevoked: "keyledger.client.previous_secret_revoked.v1",
    Client.Suspended: "keyledger.client.suspended.v1",
    Client.Reactivated: "keyledger.client.reactivated.v1",
    Client.ScopesChanged: "keyledger.client.scopes_changed.v1",
    Client.TokenLifetimeChanged: "keyledger.client.token_lifetime_changed.v1",
    Client.AudiencesChanged: "keyledger.client.audiences_changed.v1",
    Client.Renamed: "keyledger.client.renamed.v1",
    Client.TokensRevoked: "keyledger.client.tokens_revoked.v1",
    Client.Deleted: "keyledger.client.deleted.v1",
    IssuedToken.Issued: "keyledger.token.issued.v1",
    IssuedToken.Revoked: "keyledger.token.revoked.v1",
}


def audit_event_id(event: Any) -> str:
    """The same id for the same event, however often it is published."""
    return str(uuid5(_EVENT_IDS, f"{event.originator_id}/{event.originator_version}"))


def _json(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, list | tuple):
        return [_json(v) for v in value]
    return value


def audit_data(event: Any) -> dict[str, Any]:
    """The event's published fields: everything but bookkeeping and secret hashes."""
    fields = {f.name for f in dataclasses.fields(event)} - NOT_PUBLISHED
    return {name: _json(getattr(event, name)) for name in sorted(fields)}


def _subject_and_time(event: Any) -> tuple[str, datetime]:
    if isinstance(event, IssuedToken.Issued):
        return event.client_id, event.issued_at
    if isinstance(event, IssuedToken.Revoked):
        return event.client_id, event.at
    return str(event.originator_id), event_time(event)


def cloud_event(event: Any, sequence: int, source: str) -> dict[str, Any]:
    """The CloudEvents 1.0 structured-mode JSON object for one stored domain event."""
    subject, time = _subject_and_time(event)
    return {
        "specversion": SPEC_VERSION,
        "id": audit_event_id(event),
        "source": source,
        "type": AUDIT_TYPES[type(event)],
        "subject": subject,
        "time": time.isoformat(),
        "sequence": str(sequence),
        "datacontenttype": "application/json",
        "data": audit_data(event),
    }


_JSON_TYPES: dict[str, dict[str, Any]] = {
    "str": {"type": "string"},
    "int": {"type": "integer"},
    "datetime": {"type": "string", "format": "date-time"},
    "list[str]": {"type": "array", "items": {"type": "string"}},
    "str | None": {"type": ["string", "null"]},
    "int | None": {"type": ["integer", "null"]},
}


def schema_for(event_class: type[Any]) -> dict[str, Any]:
    """The JSON Schema (2020-12) of one audit message type, from the event class's fields."""
    fields = [f for f in dataclasses.fields(event_class) if f.name not in NOT_PUBLISHED]
    event_type = AUDIT_TYPES[event_class]
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"https://keyledger.dev/schemas/{event_type}.json",
        "title": event_type,
        "description": f"keyledger's {event_class.__qualname__} event as a CloudEvents 1.0 message",
        "type": "object",
        "required": [
            "specversion",
            "id",
            "source",
            "type",
            "subject",
            "time",
            "sequence",
            "datacontenttype",
            "data",
        ],
        "additionalProperties": False,
        "properties": {
            "specversion": {"const": SPEC_VERSION},
            "id": {"type": "string", "format": "uuid"},
            "source": {"type": "string", "format": "uri"},
            "type": {"const": event_type},
            "subject": {"type": "string"},
            "time": {"type": "string", "format": "date-time"},
            "sequence": {"type": "string", "pattern": "^[0-9]+$"},
            "datacontenttype": {"const": "application/json"},
            "data": {
                "type": "object",
                "required": sorted(f.name for f in fields),
                "additionalProperties": False,
                "properties": {
                    f.name: _JSON_TYPES[str(f.type)] for f in sorted(fields, key=lambda f: f.name)
                },
            },
        },
    }
