"""The admin API's OpenAPI description: every status, every body.

The handlers build plain dicts; these Structs only describe them (`ResponseSpec`s), so
schemathesis can hold each answer to its schema (tests/e2e/test_openapi_conformance.py).
Answers are open objects (a new key breaks no client); request bodies are closed.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from litestar.openapi import ResponseSpec
from litestar.params import QueryParameter

# A time a handler parses with `api.usecases.timestamps.parse_rfc3339`; the format only
# documents it.
RFC3339Query = Annotated[
    str | None, QueryParameter(format="date-time", description="RFC 3339, with an offset or Z")
]


class ErrorBody(msgspec.Struct):
    """RFC 6749 §5.2 / RFC 6750 §3 shape: every error the server answers has it."""

    error: str
    error_description: str


class SecretSlot(msgspec.Struct):
    generation: int
    expires_at: str | None


class QuotaView(msgspec.Struct):
    tokens_per_minute: int | None
    tokens_per_day: int | None


class ClientView(msgspec.Struct):
    """A client as this replica's clients model holds it (`ClientRecord.public_view`)."""

    client_id: str
    name: str
    status: Literal["active", "suspended", "deleted"]
    allowed_scopes: list[str]
    default_scopes: list[str]
    token_ttl: int
    audiences: list[str]
    default_audience: str | None
    token_endpoint_auth_method: str
    jwks: dict[str, Any] | None
    secrets: list[SecretSlot]
    version: int
    registered_at: str
    updated_at: str
    tokens_revoked_before: str | None
    secret_generation_cutoffs: dict[str, str]
    quotas: QuotaView


class PendingClient(msgspec.Struct):
    """The write is committed; this replica has not folded it yet (its follower catches up)."""

    client_id: str
    version: int
    pending: Literal[True]


class RegisteredClient(ClientView):
    client_secret: str | msgspec.UnsetType = msgspec.UNSET  # none for private_key_jwt


class RegisteredPending(PendingClient):
    client_secret: str | msgspec.UnsetType = msgspec.UNSET


class RotatedClient(ClientView):
    client_secret: str
    secret_generation: int


class RotatedPending(PendingClient):
    client_secret: str
    secret_generation: int


class HistoryEntry(msgspec.Struct):
    version: int
    at: str
    actor: str
    event: str
    changes: dict[str, Any]
    reason: str | None


class TokenEvent(msgspec.Struct):
    event: str
    at: str
    actor: str
    reason: str | None


class TokenView(msgspec.Struct):
    jti: str
    client_id: str
    scopes: list[str]
    audience: list[str]
    issued_at: str
    expires_at: str
    kid: str
    client_version: int
    secret_generation: int
    auth_method: str
    revoked_at: str | None
    history: list[TokenEvent]


class RevokedToken(TokenView):
    revoked_now: bool


class AlertView(msgspec.Struct):
    id: str
    rule: str
    severity: str
    subject: str
    subject_kind: str
    window_start: str
    window_end: str
    first_seen: str
    last_seen: str
    count: int
    threshold: int
    evidence: list[str]
    summary: str
    secret_generation: int | None


class Alerts(msgspec.Struct):
    alerts: list[AlertView]


class IssuanceBucket(msgspec.Struct):
    bucket: str
    client_id: str
    client_name: str | None
    issued: int
    revoked: int
    scopes: dict[str, int]
    audiences: dict[str, int]


class Issuance(msgspec.Struct):
    granularity: Literal["hour", "day"]
    since: str
    until: str
    buckets: list[IssuanceBucket]


class TopClient(msgspec.Struct):
    client_id: str
    client_name: str | None
    issued: int


class TopClients(msgspec.Struct):
    since: str
    until: str
    clients: list[TopClient]


class ClientActivity(msgspec.Struct):
    client_id: str
    name: str
    status: str
    secret_generation: int
    secret_age_days: float
    rotation_due: bool
    last_token_at: str | None
    dormant: bool
    tokens_issued: int
    tokens_revoked: int


class ClientsReport(msgspec.Struct):
    by_status: dict[str, int]
    rotation_policy_days: int
    dormant_after_days: int
    clients: list[ClientActivity]


class KeyView(msgspec.Struct):
    """A signing key (`api.usecases.signing_keys.key_row`); never any private part."""

    kid: str
    alg: Literal["ES256", "RS256", "EdDSA"]
    status: Literal["pending", "active", "retired", "unpublished"]
    generated_at: str
    activates_at: str
    retires_at: str | None
    unpublished_at: str | None


class Keys(msgspec.Struct):
    keys: list[KeyView]


class RotatedKey(msgspec.Struct):
    key: KeyView


def ok(body: Any, description: str) -> ResponseSpec:
    return ResponseSpec(data_container=body, description=description, generate_examples=False)


def _error(description: str) -> ResponseSpec:
    return ok(ErrorBody, description)


Responses = dict[int, ResponseSpec]

# Every admin route: Litestar's own refusal of a body or parameter (rendered by
# `api.http.errors.http_error_response`), and the guard (RFC 6750 §3.1, with WWW-Authenticate).
ADMIN: Responses = {
    400: _error("invalid_request: a body or parameter of the wrong type, or an unknown field"),
    401: _error("invalid_token, or unauthorized when no bearer token was sent"),
    403: _error("insufficient_scope: the token lacks keyledger:admin"),
}
# Routes that read a body: over Litestar's `request_max_body_size` (10 MB).
TOO_LARGE: Responses = {413: _error("invalid_request: the body is too large")}
NOT_FOUND: Responses = {404: _error("not_found: no client (or token) with that id")}
INVALID: Responses = {422: _error("invalid_request: a value the settings or report refuse")}
# A command on one client: If-Match (RFC 9110 §13.1.1) and the client's own rules.
COMMAND: Responses = {
    **ADMIN,
    **NOT_FOUND,
    409: _error("conflict: the client's state refuses the command, or it changed concurrently"),
    412: _error('precondition_failed: If-Match does not name the current version ("7")'),
    **INVALID,
}
CHANGED: Responses = {
    200: ok(ClientView | PendingClient, "The client after the change"),
    **COMMAND,
}
# A signing-key rotation: the keys' own rule (one pending key at a time) and a racing writer.
KEY_CONFLICT: Responses = {
    409: _error("conflict: a new key is already waiting to sign, or the keys changed concurrently")
}
