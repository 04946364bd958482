"""Bearer access tokens for the admin API: RFC 9068 §4 validation, RFC 6750 §3 errors.

Admin requests carry a token this server issued, with one or more admin scopes
(`domain.admin_scopes`); which command each permits is checked by the use case. It goes
through the one validation every own token gets (`api.usecases.access_tokens`): signature, `typ`,
`iss`, `aud`, time, every revocation and cut-off, the client's current state, and the
required scope both in the token and still among the client's allowed scopes.
"""

from __future__ import annotations

from api.usecases.access_tokens import AccessTokenValidator, ActiveToken, InvalidAccessToken
from domain import introspection as rules
from domain.admin_scopes import READ, Admin, NotPermitted, Permission

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

    def __init__(
        self, status_code: int, error: str | None, description: str, scope: str = READ
    ) -> None:
        super().__init__(description)
        self.status_code = status_code
        self.error = error
        self.description = description
        self.scope = scope

    def challenge(self) -> str:
        """The WWW-Authenticate value; no error code when no token was sent (§3)."""
        parts = ['Bearer realm="keyledger"']
        if self.error:
            parts.append(f'error="{self.error}"')
            parts.append(f'error_description="{self.description}"')
        if self.error == "insufficient_scope":
            parts.append(f'scope="{self.scope}"')
        return ", ".join(parts)


def _invalid(description: str) -> BearerError:
    return BearerError(401, "invalid_token", description)


def insufficient_scope(refused: NotPermitted) -> BearerError:
    return BearerError(403, "insufficient_scope", str(refused), scope=refused.permission.value)


class AccessTokenVerifier:
    """Guards the admin plane with this server's own access tokens carrying an admin scope."""

    def __init__(self, tokens: AccessTokenValidator, audience: str) -> None:
        self._tokens = tokens
        self._audience = audience

    def verify(self, authorization: str | None) -> Admin:
        """The admin the token speaks for, or the RFC 6750 error to answer with."""
        return self._admin(self.active(authorization))

    def active(self, authorization: str | None) -> ActiveToken:
        """The validated admin token itself (a dashboard session renews from it)."""
        if not authorization:
            raise BearerError(401, None, "a bearer token is required")
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise _invalid("use the Authorization: Bearer scheme")
        try:
            active = self._tokens.validate(token.strip(), audience=self._audience)
        except InvalidAccessToken as refused:
            raise _invalid(_DESCRIPTIONS.get(refused.reason, refused.reason)) from None
        self._admin(active)
        return active

    @staticmethod
    def _admin(active: ActiveToken) -> Admin:
        # Only the scopes in the token and still allowed to its client count: a demoted
        # admin's token stops working at once, not when it expires.
        admin = Admin.with_scopes(str(active.claims["client_id"]), active.scopes)
        try:
            admin.require(Permission.READ)
        except NotPermitted as refused:
            raise insufficient_scope(refused) from None
        return admin
