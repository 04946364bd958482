"""Token introspection's answer (RFC 7662 §2.2), from the one validation of
`api.usecases.access_tokens`.
"""

from __future__ import annotations

from typing import Any

from api.usecases.access_tokens import AccessTokenValidator, InvalidAccessToken
from domain.client_record import ClientRecord
from domain.oauth_errors import OAuthError

INTROSPECT_SCOPE = "keyledger:introspect"


INACTIVE: dict[str, Any] = {"active": False}


class NotAllowedToIntrospect(OAuthError):
    """An authenticated client without `keyledger:introspect` in its allowed scopes."""

    error = "unauthorized_client"
    status_code = 403
    default_description = "the client may not introspect tokens"


class TokenIntrospector:
    """Answers RFC 7662 §2.2: the claims of an active token, else exactly `{"active": false}`."""

    def __init__(self, tokens: AccessTokenValidator) -> None:
        self._tokens = tokens

    @staticmethod
    def require_introspect_scope(caller: ClientRecord) -> None:
        if INTROSPECT_SCOPE not in caller.allowed_scopes:
            raise NotAllowedToIntrospect(reason="caller_lacks_introspect_scope")

    def introspect(self, token: str) -> dict[str, Any]:
        """`token_type_hint` plays no part: this server has one kind of token. `scope` lists
        the token's scopes its client still holds (one taken away stops counting at once)."""
        try:
            active = self._tokens.validate(token)
        except InvalidAccessToken:
            return INACTIVE
        claims = active.claims
        return {
            "active": True,
            "scope": " ".join(active.scopes),
            "client_id": claims["client_id"],
            "sub": claims["sub"],
            "aud": claims["aud"],
            "iss": claims["iss"],
            "exp": claims["exp"],
            "iat": claims["iat"],
            "jti": claims["jti"],
            "token_type": "Bearer",
        }
