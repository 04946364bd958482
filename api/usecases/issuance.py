"""Issuing an access token: authenticate, decide, record durably, sign (RFC 6749 §4.4).

Access tokens are JWTs per RFC 9068 §2.2: `iss`, `exp`, `aud`, `sub`, `client_id`, `iat`,
`jti`, and `scope`. The response follows RFC 6749 §5.1.
"""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from adapters.signing import NoSigningKey
from adapters.tracing import NoTracing
from api.usecases.access_tokens import ActiveToken
from api.usecases.client_authentication import ClientAuthenticator
from api.usecases.credentials import Credentials
from api.usecases.ports import Clock, EventWriter, TokenSigner, Tracer
from domain.client_record import ClientRecord
from domain.event_ids import event_id
from domain.introspection import SECRET_GENERATION_CLAIM
from domain.oauth_errors import OAuthError, TemporarilyUnavailable, TooManyRequests
from domain.policy import Grant, TokenRequest, grant_for
from domain.quotas import IssuanceQuotas
from domain.scope import format_scope
from domain.token import IssuedToken, new_jti


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


SESSION_RENEWAL = "session_renewal"  # the `auth_method` of a renewed dashboard token
SIGNED_IN_CLAIM = "auth_time"  # RFC 9068 §2.2.1: when the credentials were presented
MAX_SESSION = timedelta(hours=12)


class SessionExpired(Exception):
    """A dashboard session past `MAX_SESSION`: sign in again."""


def _within_session(grant: Grant, signed_in: int) -> Grant:
    """The grant, ending no later than `MAX_SESSION` after the sign-in."""
    last = datetime.fromtimestamp(signed_in, UTC) + MAX_SESSION
    return replace(grant, expires_at=min(grant.expires_at, last))


class TokenIssuer:
    """The token endpoint's use case; every collaborator is a port.

    With tracing on, each step is a span under the request's: `keyledger.authenticate`,
    `keyledger.grant` (the decision), `keyledger.sign` and `keyledger.commit_wait` (until the
    token's event is durable), the last carrying the event's `cloudevents.event_id`, the id
    the audit relay's publish span and the audit message carry too.
    """

    def __init__(
        self,
        *,
        authenticator: ClientAuthenticator,
        signer: TokenSigner,
        writer: EventWriter,
        clock: Clock,
        issuer: str,
        quotas: IssuanceQuotas | None = None,
        tracer: Tracer | None = None,
    ) -> None:
        self._authenticator = authenticator
        self._tracer: Tracer = tracer or NoTracing()
        self._quotas = quotas
        self._signer = signer
        self._writer = writer
        self._clock = clock
        self._issuer = issuer

    async def issue(
        self, credentials: Credentials, request: TokenRequest, source_ip: str | None = None
    ) -> IssuedAccessToken:
        now = self._clock.now()
        with self._tracer.span("keyledger.authenticate") as span:
            span.set_attribute("keyledger.auth_method", credentials.method)
            caller = await self._authenticator.authenticate(credentials, now, None, source_ip)
            span.set_attribute("oauth.client_id", caller.client.client_id)
        with self._tracer.span("keyledger.grant"):
            grant = grant_for(caller.client, caller.secret_generation, request, now, self._issuer)
        return await self._record_and_sign(caller.client, grant, now, credentials.method, source_ip)

    async def sign_in(
        self, credentials: Credentials, scope: str, source_ip: str | None = None
    ) -> IssuedAccessToken:
        """A dashboard sign-in: the token endpoint's checks and event, for this server itself
        as audience, marked with the sign-in time and lasting at most `MAX_SESSION`."""
        now = self._clock.now()
        caller = await self._authenticator.authenticate(credentials, now, None, source_ip)
        own = (self._issuer,) if self._issuer in caller.client.audiences else ()
        request = TokenRequest(scope=scope, resources=own)
        grant = grant_for(caller.client, caller.secret_generation, request, now, self._issuer)
        signed_in = int(grant.issued_at.timestamp())
        return await self._record_and_sign(
            caller.client,
            _within_session(grant, signed_in),
            now,
            credentials.method,
            source_ip,
            signed_in=signed_in,
        )

    async def renew_session(
        self, session: ActiveToken, source_ip: str | None = None
    ) -> IssuedAccessToken:
        """A new token for a signed-in dashboard session, without its credentials again.

        Only an active token from a dashboard sign-in renews (so a revoked, cut-off or
        suspended one cannot, nor a token fetched at the token endpoint), and only while the
        secret it was signed in with still works: rotating it out, or revoking the previous
        secret, ends the session. The new token keeps the session's audience, secret
        generation and sign-in time, carries the scopes the client still holds, and never
        outlives `MAX_SESSION` after the sign-in. The caller revokes the token it replaces.
        """
        now = self._clock.now()
        claims, client = session.claims, session.client
        if SIGNED_IN_CLAIM not in claims:
            raise SessionExpired("only a dashboard sign-in renews; sign in again")
        signed_in = int(claims[SIGNED_IN_CLAIM])
        if now.timestamp() >= signed_in + MAX_SESSION.total_seconds():
            raise SessionExpired("the session is older than the longest a sign-in lasts")
        generation = int(claims.get(SECRET_GENERATION_CLAIM, 0))
        if not any(s.generation == generation and s.is_live(now) for s in client.secrets):
            raise SessionExpired("the secret this session signed in with no longer works")
        aud = claims["aud"]
        resources = tuple(aud if isinstance(aud, list) else [aud]) if client.audiences else ()
        request = TokenRequest(scope=" ".join(session.scopes), resources=resources)
        try:
            grant = grant_for(client, generation, request, now, self._issuer)
        except OAuthError as refused:
            raise SessionExpired(refused.description) from None
        return await self._record_and_sign(
            client,
            _within_session(grant, signed_in),
            now,
            SESSION_RENEWAL,
            source_ip,
            signed_in=signed_in,
        )

    async def _record_and_sign(
        self,
        record: ClientRecord,
        grant: Grant,
        now: datetime,
        auth_method: str,
        source_ip: str | None,
        signed_in: int | None = None,
    ) -> IssuedAccessToken:
        """Quotas, then the token's event committed (invariant 1) before it is answered."""
        if self._quotas is not None and (record.tokens_per_minute or record.tokens_per_day):
            refused = self._quotas.take(
                grant.client_id, record.tokens_per_minute, record.tokens_per_day, now
            )
            if refused is not None:
                raise TooManyRequests(reason=refused[0], retry_after=refused[1], quota=True)
        jti = new_jti(now, secrets.token_bytes(10))
        try:
            signing_key = self._signer.key_at(now)
        except NoSigningKey as missing:
            raise TemporarilyUnavailable(reason=f"no_signing_key: {missing}") from None
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
            auth_method=auth_method,
            source_ip=source_ip,
        )
        scope = format_scope(grant.scopes)
        claims = access_token_claims(grant, self._issuer, jti, scope)
        if signed_in is not None:
            claims[SIGNED_IN_CLAIM] = signed_in
        with self._tracer.span("keyledger.sign") as span:
            span.set_attribute("keyledger.kid", signing_key.kid)
            access_token = signing_key.sign(claims)
        with self._tracer.span("keyledger.commit_wait") as span:
            if span.is_recording():
                span.set_attribute(
                    "cloudevents.event_id",
                    event_id(issued.originator_id, issued.originator_version),
                )
            try:
                await self._writer.submit([issued])
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                raise TemporarilyUnavailable(
                    reason=f"event_write_failed: {type(exc).__name__}"
                ) from exc
        return IssuedAccessToken(access_token, grant.lifetime, scope, jti)
