"""Token introspection, RFC 7662: `POST /oauth2/introspect`.

The caller authenticates as a client (the token endpoint's methods) whose allowed scopes
include `keyledger:introspect`; an authenticated caller without it gets 403
`unauthorized_client`. The decision needs no database: the token's signature is verified
locally (cached), then its client's record and the revoked set are read from memory.
"""

from __future__ import annotations

from typing import Any

from litestar import asgi
from litestar.types import Receive, Scope, Send

from adapters.signing import JwtVerifier, TokenNotVerified
from api.client_authentication import ClientLookup
from api.issuance import Clock
from api.oauth2 import credentials_of, read_oauth_form, send_json
from api.observing import Observing
from domain.client_record import ClientRecord
from domain.introspection import is_active
from domain.oauth_errors import InvalidRequest, OAuthError
from domain.token import token_id
from projections.tokens import RevokedTokensView

INTROSPECT_SCOPE = "keyledger:introspect"
INACTIVE: dict[str, Any] = {"active": False}
MAX_TOKEN_LENGTH = 8192  # far above any token this server signs


class NotAllowedToIntrospect(OAuthError):
    """An authenticated client without `keyledger:introspect` in its allowed scopes."""

    error = "unauthorized_client"
    status_code = 403
    default_description = "the client may not introspect tokens"


class TokenIntrospector:
    """Answers RFC 7662 §2.2: the claims of an active token, else exactly `{"active": false}`."""

    def __init__(
        self,
        verifier: JwtVerifier,
        clients: ClientLookup,
        revoked: RevokedTokensView,
        clock: Clock,
    ) -> None:
        self._verifier = verifier
        self._clients = clients
        self._revoked = revoked
        self._clock = clock

    @staticmethod
    def require_introspect_scope(caller: ClientRecord) -> None:
        if INTROSPECT_SCOPE not in caller.allowed_scopes:
            raise NotAllowedToIntrospect(reason="caller_lacks_introspect_scope")

    def introspect(self, token: str) -> dict[str, Any]:
        """`token_type_hint` plays no part: this server has one kind of token."""
        if len(token) > MAX_TOKEN_LENGTH:
            return INACTIVE
        try:
            claims = self._verifier.verify(token)
        except TokenNotVerified:
            return INACTIVE
        client = self._clients.get(str(claims["client_id"]))
        revoked = self._revoked.is_revoked(str(token_id(str(claims["jti"]))))
        if not is_active(claims, client, revoked, self._clock.now()):
            return INACTIVE
        return {
            "active": True,
            "scope": claims.get("scope", ""),
            "client_id": claims["client_id"],
            "sub": claims["sub"],
            "aud": claims["aud"],
            "iss": claims["iss"],
            "exp": claims["exp"],
            "iat": claims["iat"],
            "jti": claims["jti"],
            "token_type": "Bearer",
        }


@asgi("/oauth2/introspect", copy_scope=False)
async def introspection_endpoint(scope: Scope, receive: Receive, send: Send) -> None:
    """POST /oauth2/introspect (RFC 7662 §2.1)."""
    runtime = scope["app"].state.runtime
    introspector: TokenIntrospector = runtime.introspector
    with Observing(scope, "/oauth2/introspect") as seen:
        headers, seen.params = await read_oauth_form(scope, receive)
        params = seen.params
        seen.credentials = credentials_of(headers, params)
        caller = await runtime.authenticator.authenticate(
            seen.credentials,
            runtime.clock.now(),
            f"{runtime.settings.issuer_url}/oauth2/introspect",
        )
        introspector.require_introspect_scope(caller)
    token = params.get("token")
    if not token or len(token) > 1:
        raise InvalidRequest("exactly one token parameter is required")
    await send_json(send, introspector.introspect(token[0]))
