"""Bearer access tokens for the admin API: RFC 9068 §4 validation, RFC 6750 §3 errors.

Admin requests carry a token this server issued, with scope `keyledger:admin`. It goes
through the one validation every own token gets (`api.usecases.access_tokens`): signature, `typ`,
`iss`, `aud`, time, every revocation and cut-off, the client's current state, and the
required scope both in the token and still among the client's allowed scopes.
"""

from __future__ import annotations

from typing import Any

from api.usecases.access_tokens import AccessTokenValidator, InvalidAccessToken
from domain import introspection as rules

_DESCRIPTIONS = {
    rules.REVOKED: "the token was revoked",
    rules.CUT_OFF: "the token was revoked",
    rules.GENERATION_CUT_OFF: "the token was revoked",
    rules.CLIENT_UNKNOWN: "the token's client is not active",
    rules.CLIENT_NOT_ACTIVE: "the token's client is not active",
    rules.EXPIRED: "the token has expired",
    rules.NOT_YET_VALID: "the token is not valid yet",
}


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
    """Guards a route with this server's own access tokens and one required scope."""

    def __init__(self, tokens: AccessTokenValidator, audience: str, scope: str) -> None:
        self._tokens = tokens
        self._audience = audience
        self.scope = scope

    def verify(self, authorization: str | None) -> dict[str, Any]:
        """The token's claims, or the RFC 6750 error to answer with."""
        if not authorization:
            raise BearerError(401, None, "a bearer token is required")
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise _invalid("use the Authorization: Bearer scheme")
        try:
            active = self._tokens.validate(token.strip(), audience=self._audience)
        except InvalidAccessToken as refused:
            raise _invalid(_DESCRIPTIONS.get(refused.reason, refused.reason)) from None
        # The scope must be in the token and still allowed to its client: a demoted admin's
        # token stops working at once, not when it expires.
        if not active.has_scope(self.scope):
            raise BearerError(403, "insufficient_scope", f"the token lacks scope {self.scope}")
        return active.claims
