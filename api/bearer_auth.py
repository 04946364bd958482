"""Bearer access tokens for the admin API: RFC 9068 §4 validation, RFC 6750 §3 errors.

Admin requests carry a token this server issued, with scope `keyledger:admin`. It is checked
as any resource server would (signature by a published key, `typ: at+jwt`, `iss`, `aud`,
`exp`), and, because this server has the clients model in memory, also against the client's
current state: a suspended or deleted admin client, or a token older than a revoke-all
cut-off, is refused at once.
"""

from __future__ import annotations

from typing import Any

from adapters.signing import JwtVerifier, KeyRing, TokenNotVerified
from api.client_authentication import ClientLookup
from api.issuance import Clock
from domain.introspection import cut_off

_CLOCK_SKEW = 60


class BearerError(Exception):
    """An RFC 6750 §3.1 error: 401 `invalid_token` (or no token), 403 `insufficient_scope`."""

    def __init__(self, status_code: int, error: str | None, description: str) -> None:
        super().__init__(description)
        self.status_code = status_code
        self.error = error
        self.description = description

    def challenge(self, scope: str) -> str:
        """The WWW-Authenticate value; no error code when no token was sent (§3)."""
        parts = ['Bearer realm="keyledger"']
        if self.error:
            parts.append(f'error="{self.error}"')
            parts.append(f'error_description="{self.description}"')
        if self.error == "insufficient_scope":
            parts.append(f'scope="{scope}"')
        return ", ".join(parts)


def _invalid(description: str) -> BearerError:
    return BearerError(401, "invalid_token", description)


class AccessTokenVerifier:
    """Validates this server's own access tokens for one required scope."""

    def __init__(
        self, keys: KeyRing, issuer: str, clients: ClientLookup, clock: Clock, scope: str
    ) -> None:
        self._jwt = JwtVerifier(keys, issuer, cache_size=1_000)
        self._issuer = issuer
        self._clients = clients
        self._clock = clock
        self.scope = scope

    def verify(self, authorization: str | None) -> dict[str, Any]:
        """The token's claims, or the RFC 6750 error to answer with."""
        if not authorization:
            raise BearerError(401, None, "a bearer token is required")
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise _invalid("use the Authorization: Bearer scheme")
        try:
            claims = self._jwt.verify(token.strip())
        except TokenNotVerified as exc:
            raise _invalid(str(exc)) from None
        audience = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
        if self._issuer not in audience:
            raise _invalid("the token is for another audience")
        now = self._clock.now().timestamp()
        if claims["exp"] <= now:
            raise _invalid("the token has expired")
        if claims["iat"] > now + _CLOCK_SKEW:
            raise _invalid("the token is not valid yet")
        record = self._clients.get(str(claims.get("client_id")))
        if record is None or not record.is_active:
            raise _invalid("the token's client is not active")
        if cut_off(claims["iat"], record.tokens_revoked_before):
            raise _invalid("the token was revoked")
        if self.scope not in str(claims.get("scope", "")).split(" "):
            raise BearerError(403, "insufficient_scope", f"the token lacks scope {self.scope}")
        return claims
