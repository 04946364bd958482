"""Issuing an access token: authenticate, decide, record durably, sign (RFC 6749 §4.4).

Access tokens are JWTs per RFC 9068 §2.2: `iss`, `exp`, `aud`, `sub`, `client_id`, `iat`,
`jti`, and `scope`. The response follows RFC 6749 §5.1.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from typing import Any

from api.usecases.client_authentication import ClientAuthenticator
from api.usecases.credentials import Credentials
from api.usecases.ports import Clock, EventWriter, TokenSigner
from domain.introspection import SECRET_GENERATION_CLAIM
from domain.oauth_errors import TemporarilyUnavailable, TooManyRequests
from domain.policy import Grant, TokenRequest, grant_for
from domain.quotas import IssuanceQuotas
from domain.scope import format_scope
from domain.token import IssuedToken


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
        authenticator: ClientAuthenticator,
        signer: TokenSigner,
        writer: EventWriter,
        clock: Clock,
        issuer: str,
        quotas: IssuanceQuotas | None = None,
    ) -> None:
        self._authenticator = authenticator
        self._quotas = quotas
        self._signer = signer
        self._writer = writer
        self._clock = clock
        self._issuer = issuer

    async def issue(
        self, credentials: Credentials, request: TokenRequest, source_ip: str | None = None
    ) -> IssuedAccessToken:
        now = self._clock.now()
        caller = await self._authenticator.authenticate(credentials, now, None, source_ip)
        record = caller.client
        grant = grant_for(record, caller.secret_generation, request, now, self._issuer)
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
