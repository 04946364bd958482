"""Issuing an access token: authenticate, decide, record durably, sign (RFC 6749 §4.4).

Access tokens are JWTs per RFC 9068 §2.2: `iss`, `exp`, `aud`, `sub`, `client_id`, `iat`,
`jti`, and `scope`. The response follows RFC 6749 §5.1.
"""

from __future__ import annotations

import asyncio
import math
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from api.client_auth import Credentials
from api.client_authentication import (
    ClientAuthenticator,
    ClientLookup,
    SecretHashing,
    matching_secret,
    retired_secret,
)
from domain.client import SecretSlot
from domain.client_record import ClientRecord, RetiredSecret
from domain.introspection import SECRET_GENERATION_CLAIM
from domain.networks import source_network
from domain.oauth_errors import InvalidClient, TemporarilyUnavailable, TooManyRequests
from domain.policy import Grant, TokenRequest, authenticate, decide, grant_for
from domain.quotas import IssuanceQuotas
from domain.scope import format_scope
from domain.throttling import FailureThrottle
from domain.token import IssuedToken


class SigningKey(Protocol):
    @property
    def kid(self) -> str: ...

    def sign(self, claims: dict[str, Any]) -> str: ...


class TokenSigner(Protocol):
    def key_at(self, now: datetime) -> SigningKey:
        """The key that signs at `now` (keys take turns: rotation)."""


class EventWriter(Protocol):
    def submit(self, events: Sequence[Any]) -> Awaitable[None]: ...


class Clock(Protocol):
    def now(self) -> datetime: ...


@dataclass(frozen=True)
class IssuedAccessToken:
    """What the token endpoint answers with."""

    access_token: str
    expires_in: int
    scope: str
    jti: str

    def response_body(self) -> dict[str, Any]:
        return {
            "access_token": self.access_token,
            "token_type": "Bearer",
            "expires_in": self.expires_in,
            "scope": self.scope,
        }


def access_token_claims(grant: Grant, issuer: str, jti: str, scope: str) -> dict[str, Any]:
    """RFC 9068 §2.2 claims for a client_credentials grant (`sub` is the client itself)."""
    return {
        "iss": issuer,
        "sub": grant.client_id,
        "client_id": grant.client_id,
        "aud": grant.audience[0] if len(grant.audience) == 1 else list(grant.audience),
        "iat": int(grant.issued_at.timestamp()),
        "exp": int(grant.expires_at.timestamp()),
        "jti": jti,
        "scope": scope,
        # Lineage (never the hash): lets introspection honour "revoke every token minted
        # with secret N" from the verified token alone, with no lookup.
        SECRET_GENERATION_CLAIM: grant.secret_generation,
    }


class TokenIssuer:
    """The token endpoint's use case; every collaborator is a port."""

    def __init__(
        self,
        *,
        clients: ClientLookup,
        hasher: SecretHashing,
        signer: TokenSigner,
        writer: EventWriter,
        clock: Clock,
        issuer: str,
        throttle: FailureThrottle | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        quotas: IssuanceQuotas | None = None,
        authenticator: ClientAuthenticator | None = None,
    ) -> None:
        self._authenticator = authenticator
        self._quotas = quotas
        self._throttle = throttle
        self._monotonic = monotonic
        self._clients = clients
        self._hasher = hasher
        self._signer = signer
        self._writer = writer
        self._clock = clock
        self._issuer = issuer

    async def issue(
        self, credentials: Credentials, request: TokenRequest, source_ip: str | None = None
    ) -> IssuedAccessToken:
        now = self._clock.now()
        if credentials.assertion is not None:
            record, grant = await self._grant_by_assertion(credentials, request, now, source_ip)
        else:
            record, grant = self._grant_by_secret(credentials, request, now, source_ip)
        if self._quotas is not None and (record.tokens_per_minute or record.tokens_per_day):
            refused = self._quotas.take(
                grant.client_id, record.tokens_per_minute, record.tokens_per_day, now
            )
            if refused is not None:
                raise TooManyRequests(reason=refused[0], retry_after=refused[1], quota=True)
        jti = str(uuid.uuid4())
        signing_key = self._signer.key_at(now)
        issued = IssuedToken.issue(
            jti=jti,
            client_id=grant.client_id,
            scopes=sorted(grant.scopes),
            audience=list(grant.audience),
            issued_at=grant.issued_at,
            expires_at=grant.expires_at,
            kid=signing_key.kid,
            client_version=grant.client_version,
            secret_generation=grant.secret_generation,
            auth_method=credentials.method,
            source_ip=source_ip,
        )
        scope = format_scope(grant.scopes)
        access_token = signing_key.sign(access_token_claims(grant, self._issuer, jti, scope))
        try:
            await self._writer.submit([issued])
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            raise TemporarilyUnavailable(
                reason=f"event_write_failed: {type(exc).__name__}"
            ) from exc
        return IssuedAccessToken(access_token, grant.lifetime, scope, jti)

    def _grant_by_secret(
        self, credentials: Credentials, request: TokenRequest, now: datetime, source_ip: str | None
    ) -> tuple[ClientRecord, Grant]:
        # Hash before looking up, so unknown and known client ids take the same time.
        presented = self._hasher.hash(credentials.secret)
        record = self._clients.get(credentials.client_id)
        matched = matching_secret(record, presented)
        retired = retired_secret(record, presented) if matched is None else None
        throttle = self._throttle
        if throttle is not None:
            moment = self._monotonic()
            wait = throttle.wait(source_ip, credentials.client_id, moment)
            if wait is not None:
                self._refuse_while_throttled(record, matched, retired, now, source_ip, wait)
            try:
                grant = decide(record, matched, request, now, self._issuer, retired)
            except InvalidClient:
                throttle.failed(source_ip, credentials.client_id, moment)
                raise
            throttle.succeeded(grant.client_id, source_network(source_ip))
        else:
            grant = decide(record, matched, request, now, self._issuer, retired)
        assert record is not None  # decide() raised otherwise
        return record, grant

    async def _grant_by_assertion(
        self, credentials: Credentials, request: TokenRequest, now: datetime, source_ip: str | None
    ) -> tuple[ClientRecord, Grant]:
        """RFC 7523 §3: a valid assertion from an active private_key_jwt client, used once."""
        if self._authenticator is None:
            raise InvalidClient(reason="auth_method_mismatch")
        throttle = self._throttle
        moment = self._monotonic()
        wait = throttle.wait(source_ip, credentials.client_id, moment) if throttle else None
        try:
            client = await self._authenticator.by_assertion(credentials, now)
        except InvalidClient as failure:
            if throttle is not None:
                throttle.failed(source_ip, credentials.client_id, moment)
            if wait is not None:
                raise TooManyRequests(
                    reason=failure.reason, retry_after=math.ceil(wait), failed_authentication=True
                ) from None
            raise
        if throttle is not None:
            network = source_network(source_ip)
            if wait is not None and not throttle.usual(client.client_id, network):
                raise TooManyRequests(
                    reason="throttled_unusual_network", retry_after=math.ceil(wait)
                )
            throttle.succeeded(client.client_id, network)
        return client, grant_for(client, 0, request, now, self._issuer)

    def _refuse_while_throttled(
        self,
        record: ClientRecord | None,
        matched: SecretSlot | None,
        retired: RetiredSecret | None,
        now: datetime,
        source_ip: str | None,
        wait: float,
    ) -> None:
        """429 while throttled, but never to the right credentials from a usual network."""
        assert self._throttle is not None
        try:
            client, _ = authenticate(record, matched, now, retired)
        except InvalidClient as failure:
            client_id = record.client_id if record else None
            self._throttle.failed(source_ip, client_id, self._monotonic())
            raise TooManyRequests(
                reason=failure.reason, retry_after=math.ceil(wait), failed_authentication=True
            ) from None
        if not self._throttle.usual(client.client_id, source_network(source_ip)):
            raise TooManyRequests(reason="throttled_unusual_network", retry_after=math.ceil(wait))

    def note_failure(self, source_ip: str | None, client_id: str | None) -> None:
        """A failed authentication seen before credentials reached `issue` (malformed ones)."""
        if self._throttle is not None:
            self._throttle.failed(source_ip, client_id, self._monotonic())
