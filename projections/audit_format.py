"""The audit stream's message format: CloudEvents 1.0 structured JSON, one per domain event.

`id` is derived from the event's aggregate id and version, so the same event always has the
same id (consumers deduplicate by it); `sequence` is the store's notification id; `subject`
is the client id; `data` holds the event's fields with the actor and reason, and never a
secret hash. Every type has a JSON Schema under `schemas/`, generated from the event classes
(`make schemas`) and checked against them by the tests.
"""

from __future__ import annotations

import dataclasses
import functools
from base64 import b64encode
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import msgspec

from adapters.compact_events import EPOCH, IssuedFields
from domain.client import Client, event_time
from domain.event_ids import event_id
from domain.installation import Installation
from domain.ledger_keys import CheckpointRequest, LedgerCheckpoint, LedgerKeys
from domain.observations import (
    AUTHENTICATION_FAILED,
    AUTHENTICATION_FAILURE_REASONS,
    MAX_CLIENT_ID,
    MAX_RESOURCE,
    MAX_RESOURCES,
    MAX_SCOPE,
    MAX_USER_AGENT,
    OBSERVATION_KINDS,
    SecurityObservation,
)
from domain.signing_keys import SigningKeys
from domain.token import IssuedToken

SPEC_VERSION = "1.0"
NOT_PUBLISHED = {
    "originator_id",
    "originator_version",
    "originator_topic",
    "timestamp",
    "secret_hash",
    "sealed_private_key",  # encrypted, and still never leaves the event store
}

AUDIT_TYPES: dict[type[Any], str] = {
    Client.Registered: "keyledger.client.registered.v1",
    Client.SecretRotated: "keyledger.client.secret_rotated.v1",
    Client.KeysReplaced: "keyledger.client.keys_replaced.v1",
    Client.PreviousSecretRevoked: "keyledger.client.previous_secret_revoked.v1",
    Client.Suspended: "keyledger.client.suspended.v1",
    Client.Reactivated: "keyledger.client.reactivated.v1",
    Client.ScopesChanged: "keyledger.client.scopes_changed.v1",
    Client.TokenLifetimeChanged: "keyledger.client.token_lifetime_changed.v1",
    Client.QuotasChanged: "keyledger.client.quotas_changed.v1",
    Client.AudiencesChanged: "keyledger.client.audiences_changed.v1",
    Client.Renamed: "keyledger.client.renamed.v1",
    Client.TokensRevoked: "keyledger.client.tokens_revoked.v1",
    Client.Deleted: "keyledger.client.deleted.v1",
    IssuedToken.Issued: "keyledger.token.issued.v1",
    IssuedToken.Revoked: "keyledger.token.revoked.v1",
    SigningKeys.Started: "keyledger.signing_keys.started.v1",
    SigningKeys.KeyGenerated: "keyledger.signing_keys.key_generated.v1",
    SigningKeys.KeyRetired: "keyledger.signing_keys.key_retired.v1",
    Installation.Initialised: "keyledger.installation.initialised.v1",
    LedgerKeys.Started: "keyledger.ledger.keys_started.v1",
    LedgerKeys.KeyGenerated: "keyledger.ledger.key_generated.v1",
    LedgerCheckpoint.Signed: "keyledger.ledger.checkpoint_signed.v1",
    CheckpointRequest.Requested: "keyledger.ledger.checkpoint_requested.v1",
}


def audit_event_id(event: Any) -> str:
    """The same id for the same event, however often it is published."""
    return event_id(event.originator_id, event.originator_version)


_PLAIN = frozenset({str, int, bool, float, type(None)})


def _json(value: Any) -> Any:
    if type(value) in _PLAIN:  # most fields: nothing to convert
        return value
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, list | tuple):
        return [_json(v) for v in value]
    return value


_PUBLISHED: dict[type[Any], tuple[str, ...]] = {}


def published_fields(event_type: type[Any]) -> tuple[str, ...]:
    """An event type's published fields, in order: all but bookkeeping and secret hashes."""
    found = _PUBLISHED.get(event_type)
    if found is None:
        names = {f.name for f in dataclasses.fields(event_type)} - NOT_PUBLISHED
        found = _PUBLISHED[event_type] = tuple(sorted(names))
    return found


def audit_data(event: Any) -> dict[str, Any]:
    """The event's published fields: everything but bookkeeping and secret hashes."""
    return {name: _json(getattr(event, name)) for name in published_fields(type(event))}


def _subject_and_time(event: Any) -> tuple[str, datetime]:
    if isinstance(event, IssuedToken.Issued):
        return event.client_id, event.issued_at
    if isinstance(event, IssuedToken.Revoked):
        return event.client_id, event.at
    if isinstance(
        event,
        SigningKeys.Started
        | SigningKeys.KeyGenerated
        | SigningKeys.KeyRetired
        | Installation.Initialised
        | LedgerKeys.Started
        | LedgerKeys.KeyGenerated
        | LedgerCheckpoint.Signed
        | CheckpointRequest.Requested,
    ):
        return str(event.originator_id), event.at
    return str(event.originator_id), event_time(event)


def cloud_event(
    event: Any, sequence: int, source: str, ledger_entry: bytes | None = None
) -> dict[str, Any]:
    """The CloudEvents 1.0 structured-mode JSON object for one stored domain event.

    `ledgerentry` (an extension attribute) is the event's leaf in the ledger's Merkle tree,
    base64: with it, a consumer of the topic can recompute the tree and check checkpoints.
    """
    subject, time = _subject_and_time(event)
    extension = {} if ledger_entry is None else {"ledgerentry": b64encode(ledger_entry).decode()}
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
        **extension,
    }


_JSON_TYPES: dict[str, dict[str, Any]] = {
    "str": {"type": "string"},
    "int": {"type": "integer"},
    "datetime": {"type": "string", "format": "date-time"},
    "list[str]": {"type": "array", "items": {"type": "string"}},
    "str | None": {"type": ["string", "null"]},
    "int | None": {"type": ["integer", "null"]},
}
# A private_key_jwt client's public JWK: only these members are ever stored (no private ones).
_JWK = {
    "type": "object",
    "required": ["kty", "use"],
    "additionalProperties": False,
    "properties": {
        name: {"type": "string"} for name in ("kty", "use", "kid", "alg", "crv", "x", "y", "n", "e")
    },
}
_JSON_TYPES["list[dict[str, Any]]"] = {"type": "array", "items": _JWK}
_JSON_TYPES["dict[str, Any]"] = _JWK  # a signing key's public JWK
_JSON_TYPES["bool"] = {"type": "boolean"}
_JSON_TYPES["list[dict[str, Any]] | None"] = {"type": ["array", "null"], "items": _JWK}


def cloud_event_schema(
    event_type: str,
    description: str,
    *,
    required: list[str],
    subject: dict[str, Any],
    data: dict[str, Any],
    sequence: bool = False,
    optional: frozenset[str] = frozenset(),
) -> dict[str, Any]:
    """The JSON Schema (2020-12) of one CloudEvents 1.0 message type with these `data` fields."""
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"https://keyledger.dev/schemas/{event_type}.json",
        "title": event_type,
        "description": description,
        "type": "object",
        "required": required,
        "additionalProperties": False,
        "properties": {
            "specversion": {"const": SPEC_VERSION},
            "id": {"type": "string", "format": "uuid"},
            "source": {"type": "string", "format": "uri"},
            "type": {"const": event_type},
            "subject": subject,
            "time": {"type": "string", "format": "date-time"},
            **({"sequence": {"type": "string", "pattern": "^[0-9]+$"}} if sequence else {}),
            **({"ledgerentry": _LEDGER_ENTRY} if sequence else {}),
            "datacontenttype": {"const": "application/json"},
            "data": {
                "type": "object",
                "required": sorted(set(data) - optional),
                "additionalProperties": False,
                "properties": data,
            },
        },
    }


_LEDGER_ENTRY = {
    "type": "string",
    "contentEncoding": "base64",
    "description": "the event's leaf in the ledger's Merkle tree (RFC 9162 leaf input): "
    "position, originator id, version, topic and the SHA-256 of the stored state",
}


def schema_for(event_class: type[Any]) -> dict[str, Any]:
    """The JSON Schema of one audit message type, from the event class's fields."""
    fields = [f for f in dataclasses.fields(event_class) if f.name not in NOT_PUBLISHED]
    return cloud_event_schema(
        AUDIT_TYPES[event_class],
        f"keyledger's {event_class.__qualname__} event as a CloudEvents 1.0 message",
        required=[
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
        subject={"type": "string"},
        data={f.name: _JSON_TYPES[str(f.type)] for f in sorted(fields, key=lambda f: f.name)},
        sequence=True,
    )


SECURITY_TYPES: dict[str, str] = {
    kind: f"keyledger.security.{kind}.v1" for kind in OBSERVATION_KINDS
}


def security_event(observation: SecurityObservation, event_id: str, source: str) -> dict[str, Any]:
    """The CloudEvents message of a security observation.

    Not from the store, so it has no `sequence`; its `id` is random, made once when published.
    `subject` is the client id the request presented (it may name no registered client).
    `count` requests with these fields arrived from `first_seen` (also `time`) to `last_seen`.
    """
    message: dict[str, Any] = {
        "specversion": SPEC_VERSION,
        "id": event_id,
        "source": source,
        "type": SECURITY_TYPES[observation.kind],
        **({"subject": observation.client_id} if observation.client_id is not None else {}),
        "time": observation.at.isoformat(),
        "datacontenttype": "application/json",
        "data": {
            "endpoint": observation.endpoint,
            "error": observation.error,
            "reason": observation.reason,
            "client_id": observation.client_id,
            "auth_method": observation.auth_method,
            "source_ip": observation.source_ip,
            "user_agent": observation.user_agent,
            "requested_scope": observation.requested_scope,
            "requested_resources": list(observation.requested_resources),
            "secret_generation": observation.secret_generation,
            "count": observation.count,
            "first_seen": observation.at.isoformat(),
            "last_seen": observation.last_seen.isoformat(),
        },
    }
    return message


def _nullable_string(max_length: int | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": ["string", "null"]}
    if max_length is not None:
        schema["maxLength"] = max_length
    return schema


# Added after the first v1 consumers: optional, so a message without them (count 1) is valid.
_COUNTED = frozenset({"count", "first_seen", "last_seen"})


def security_schema(kind: str) -> dict[str, Any]:
    """The JSON Schema (2020-12) of one security observation type."""
    event_type = SECURITY_TYPES[kind]
    reason: dict[str, Any] = {"type": "string"}
    if kind == AUTHENTICATION_FAILED:
        reason = {"enum": list(AUTHENTICATION_FAILURE_REASONS)}
    data_properties: dict[str, Any] = {
        "endpoint": {"type": "string"},
        "error": {"type": "string"},
        "reason": reason,
        "client_id": _nullable_string(MAX_CLIENT_ID),
        "auth_method": _nullable_string(),
        "source_ip": _nullable_string(),
        "user_agent": _nullable_string(MAX_USER_AGENT),
        "requested_scope": _nullable_string(MAX_SCOPE),
        "requested_resources": {
            "type": "array",
            "maxItems": MAX_RESOURCES,
            "items": {"type": "string", "maxLength": MAX_RESOURCE},
        },
        "secret_generation": {
            "type": ["integer", "null"],
            "description": "the generation of a retired or expired secret that was presented",
        },
        "count": {
            "type": "integer",
            "minimum": 1,
            "description": "requests this message stands for: those of one second with the "
            "same endpoint, error, reason, client id, source IP, auth method and secret "
            "generation; user agent, scope and resources are the first one's. Absent: 1",
        },
        "first_seen": {
            "type": "string",
            "format": "date-time",
            "description": "the first of the counted requests (also `time`)",
        },
        "last_seen": {
            "type": "string",
            "format": "date-time",
            "description": "the last of the counted requests",
        },
    }
    return cloud_event_schema(
        event_type,
        f"a security observation ({kind}), never stored as an event",
        required=["specversion", "id", "source", "type", "time", "datacontenttype", "data"],
        subject={"type": "string", "maxLength": MAX_CLIENT_ID},
        data=data_properties,
        optional=_COUNTED,
    )


def all_schemas() -> dict[str, dict[str, Any]]:
    """Every message type on the audit topic with its schema, domain events first."""
    schemas = {t: schema_for(c) for c, t in AUDIT_TYPES.items()}
    schemas.update({t: security_schema(k) for k, t in SECURITY_TYPES.items()})
    return schemas


def security_message(observation: SecurityObservation, source: str) -> tuple[bytes, bytes]:
    """The Kafka key (presented client id, else source IP) and value of one observation."""
    message = security_event(observation, str(uuid4()), source)
    key = observation.client_id or observation.source_ip or "unknown"
    return key.encode(), msgspec.json.encode(message)


def audit_message(
    event: Any, notification_id: int, source: str, ledger_entry: bytes | None = None
) -> tuple[bytes, bytes]:
    """The Kafka key (the client id) and value (the CloudEvents JSON) of one stored event."""
    if type(event) is IssuedToken.Issued:
        message = issued_cloud_event(event, notification_id, source, ledger_entry)
    else:
        message = cloud_event(event, notification_id, source, ledger_entry)
    return message["subject"].encode(), msgspec.json.encode(message)


ISSUED_AUDIT_TYPE = AUDIT_TYPES[IssuedToken.Issued]


def issued_cloud_event(
    event: IssuedToken.Issued, sequence: int, source: str, ledger_entry: bytes | None = None
) -> dict[str, Any]:
    """`cloud_event` of a token's `Issued` event, the same object written out field by field:
    the relay builds one per token, and the general walk over fields cost twice as much."""
    issued_at = event.issued_at.isoformat()
    message = {
        "specversion": SPEC_VERSION,
        "id": event_id(event.originator_id, event.originator_version),
        "source": source,
        "type": ISSUED_AUDIT_TYPE,
        "subject": event.client_id,
        "time": issued_at,
        "sequence": str(sequence),
        "datacontenttype": "application/json",
        "data": {
            "audience": _json(event.audience),
            "auth_method": _json(event.auth_method),
            "client_id": _json(event.client_id),
            "client_version": _json(event.client_version),
            "expires_at": _json(event.expires_at),
            "issued_at": issued_at,
            "jti": _json(event.jti),
            "kid": _json(event.kid),
            "scopes": _json(event.scopes),
            "secret_generation": _json(event.secret_generation),
            "source_ip": _json(event.source_ip),
        },
    }
    if ledger_entry is not None:
        message["ledgerentry"] = b64encode(ledger_entry).decode()
    return message


@functools.lru_cache(maxsize=4096)
def _whole_second(seconds: int) -> str:
    """`isoformat()` of a UTC second since the epoch, without its `+00:00`."""
    return (EPOCH + timedelta(seconds=seconds)).isoformat()[:-6]


def utc_isoformat(micros: int) -> str:
    """`datetime.isoformat()` of the UTC time `micros` microseconds after the epoch (the
    second is formatted once for all the tokens issued in it)."""
    if type(micros) is not int:  # not a row this server wrote: as `datetime` formats it
        return (EPOCH + timedelta(microseconds=micros)).isoformat()
    seconds, fraction = divmod(micros, 1_000_000)
    if fraction:
        return f"{_whole_second(seconds)}.{fraction:06d}+00:00"
    return f"{_whole_second(seconds)}+00:00"


def stored_issued_message(
    fields: IssuedFields,
    originator_id: UUID,
    originator_version: int,
    sequence: int,
    source: str,
    ledger_entry: bytes | None = None,
) -> tuple[bytes, bytes]:
    """`audit_message` of a token's `Issued` event stored compactly, written from its stored
    fields: the same key and bytes, without building the event (the relay's one per token)."""
    issued_at = utc_isoformat(fields.issued_micros)
    message = {
        "specversion": SPEC_VERSION,
        "id": event_id(originator_id, originator_version),
        "source": source,
        "type": ISSUED_AUDIT_TYPE,
        "subject": fields.client_id,
        "time": issued_at,
        "sequence": str(sequence),
        "datacontenttype": "application/json",
        "data": {
            "audience": fields.audience,
            "auth_method": fields.auth_method,
            "client_id": fields.client_id,
            "client_version": fields.client_version,
            "expires_at": utc_isoformat(fields.issued_micros + fields.lifetime_micros),
            "issued_at": issued_at,
            "jti": fields.jti_of(originator_id),
            "kid": fields.kid,
            "scopes": fields.scopes,
            "secret_generation": fields.secret_generation,
            "source_ip": fields.source_ip,
        },
    }
    if ledger_entry is not None:
        message["ledgerentry"] = b64encode(ledger_entry).decode()
    return fields.client_id.encode(), msgspec.json.encode(message)
