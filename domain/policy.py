"""The client_credentials grant decision, RFC 6749 §4.4, with RFC 8707 resource indicators.

Pure: given what is known about the client, which of its secrets the presented one matched,
the request and the time, it returns the grant to issue or raises the RFC error.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from domain.client import PRIVATE_KEY_JWT, SecretSlot
from domain.client_record import ClientRecord, RetiredSecret
from domain.oauth_errors import InvalidClient, InvalidScope, InvalidTarget
from domain.scope import ScopeSyntaxError, parse_scope


@dataclass(frozen=True)
class TokenRequest:
    """The grant parameters of a token request; `scope` None means omitted."""

    scope: str | None
    resources: tuple[str, ...] = ()


@dataclass(frozen=True)
class Grant:
    """What a token will say: the decision, before signing."""

    client_id: str
    scopes: frozenset[str]
    audience: tuple[str, ...]
    issued_at: datetime
    expires_at: datetime
    client_version: int
    secret_generation: int

    @property
    def lifetime(self) -> int:
        return int((self.expires_at - self.issued_at).total_seconds())


AUTHENTICATION_FAILURES = (
    "unknown_client",
    "wrong_secret",
    "expired_secret",
    "revoked_secret",
    "client_suspended",
    "client_deleted",
    "auth_method_mismatch",
)


def authenticate(
    client: ClientRecord | None,
    matched: SecretSlot | None,
    now: datetime,
    retired: RetiredSecret | None = None,
) -> tuple[ClientRecord, SecretSlot]:
    """Raise `invalid_client` unless an active client presented one of its live secrets.

    The reason (for the audit stream, never the response) names which check failed; a secret
    that once belonged to the client but no longer works (`retired`) is told apart from one
    that never did, because its use suggests a leaked old secret.
    """
    if client is None:
        raise InvalidClient(reason="unknown_client")
    if client.status == "deleted":
        raise InvalidClient(reason="client_deleted")
    if client.auth_method == PRIVATE_KEY_JWT:  # it registered keys: a secret never works
        raise InvalidClient(reason="auth_method_mismatch")
    if matched is None:
        if retired is not None:
            raise InvalidClient(
                reason=f"{retired.cause}_secret", secret_generation=retired.generation
            )
        raise InvalidClient(reason="wrong_secret")
    if not matched.is_live(now):
        raise InvalidClient(reason="expired_secret", secret_generation=matched.generation)
    if not client.is_active:
        raise InvalidClient(reason=f"client_{client.status}")
    return client, matched


def authenticate_by_assertion(client: ClientRecord | None) -> ClientRecord:
    """Raise `invalid_client` unless an active `private_key_jwt` client is named.

    The assertion's signature and claims are checked after this, against the client's keys.
    """
    if client is None:
        raise InvalidClient(reason="unknown_client")
    if client.status == "deleted":
        raise InvalidClient(reason="client_deleted")
    if client.auth_method != PRIVATE_KEY_JWT:  # RFC 7591 §2: the method it registered
        raise InvalidClient(reason="auth_method_mismatch")
    if not client.is_active:
        raise InvalidClient(reason=f"client_{client.status}")
    return client


def granted_scopes(client: ClientRecord, requested: str | None) -> frozenset[str]:
    """RFC 6749 §3.3: the requested scopes if all are allowed, else the client's defaults.

    "If the client omits the scope parameter ... the authorization server MUST either process
    the request using a pre-defined default value or fail the request indicating an invalid
    scope": with no defaults, we fail.
    """
    if requested is None:
        if not client.default_scopes:
            raise InvalidScope(reason="no_default_scope")
        return client.default_scopes
    try:
        scopes = parse_scope(requested)
    except ScopeSyntaxError as exc:
        raise InvalidScope(
            f"malformed scope: {exc.bad_token!r}", reason="malformed_scope"
        ) from None
    if not scopes <= client.allowed_scopes:
        raise InvalidScope(reason="scope_not_allowed")
    return scopes


def is_resource_indicator(value: str) -> bool:
    """RFC 8707 §2: "MUST be an absolute URI ... MUST NOT include a fragment component"."""
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - a malformed host or port raises here, not in urlsplit
    except ValueError:
        return False
    return bool(parts.scheme) and "#" not in value and value.strip() == value


def audience(client: ClientRecord, resources: tuple[str, ...], issuer: str) -> tuple[str, ...]:
    """The token's `aud`: the requested resources, else the client's default audience, else
    its audiences, else the issuer (RFC 8707 §2: "the authorization server SHOULD ... use a
    default resource" when a request names none)."""
    if resources:
        for resource in resources:
            if not is_resource_indicator(resource):
                raise InvalidTarget(
                    "resource must be an absolute URI without fragment",
                    reason="malformed_resource",
                )
            if resource not in client.audiences:
                raise InvalidTarget(reason="resource_not_allowed")
        return tuple(sorted(set(resources)))
    if client.default_audience is not None:
        return (client.default_audience,)
    return client.audiences or (issuer,)


def decide(
    client: ClientRecord | None,
    matched: SecretSlot | None,
    request: TokenRequest,
    now: datetime,
    issuer: str,
    retired: RetiredSecret | None = None,
) -> Grant:
    """Decide a client_credentials request: the grant, or the RFC 6749 §5.2 error."""
    client, matched = authenticate(client, matched, now, retired)
    return grant_for(client, matched.generation, request, now, issuer)


def grant_for(
    client: ClientRecord, secret_generation: int, request: TokenRequest, now: datetime, issuer: str
) -> Grant:
    """The grant to an authenticated client (`secret_generation` 0: it used no secret)."""
    now = now.replace(microsecond=0)  # JWT times are whole seconds (RFC 7519 NumericDate)
    scopes = granted_scopes(client, request.scope)
    aud = audience(client, request.resources, issuer)
    return Grant(
        client_id=client.client_id,
        scopes=scopes,
        audience=aud,
        issued_at=now,
        expires_at=now + timedelta(seconds=client.token_ttl),
        client_version=client.version,
        secret_generation=secret_generation,
    )
