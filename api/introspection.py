"""Token introspection, RFC 7662: `POST /oauth2/introspect`.

The caller authenticates as a client (the token endpoint's methods) whose allowed scopes
include `keyledger:introspect`; an authenticated caller without it gets 403
`unauthorized_client`. The decision needs no database: the token's signature is verified
locally (cached), then its client's record and the revoked set are read from memory: the
one validation of `api.access_tokens`, which the admin API applies too.
"""

from __future__ import annotations

from typing import Any

from litestar import asgi
from litestar.types import Receive, Scope, Send

from api.access_tokens import AccessTokenValidator, InvalidAccessToken
from api.oauth2 import credentials_of, peer_address, read_oauth_form, send_json
from api.observing import Observing
from domain.client_record import ClientRecord
from domain.oauth_errors import InvalidRequest, OAuthError

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


@asgi("/oauth2/introspect", copy_scope=False)
async def introspection_endpoint(scope: Scope, receive: Receive, send: Send) -> None:
    """POST /oauth2/introspect (RFC 7662 §2.1)."""
    runtime = scope["app"].state.runtime
    introspector: TokenIntrospector = runtime.introspector
    with Observing(scope, "/oauth2/introspect") as seen:
        headers, seen.params = await read_oauth_form(scope, receive)
        params = seen.params
        seen.credentials = credentials_of(scope, headers, params)
        caller = (
            await runtime.authenticator.authenticate(
                seen.credentials,
                runtime.clock.now(),
                f"{runtime.settings.issuer_url}/oauth2/introspect",
                peer_address(scope),
            )
        ).client
        introspector.require_introspect_scope(caller)
    token = params.get("token")
    if not token or len(token) > 1:
        raise InvalidRequest("exactly one token parameter is required")
    await send_json(send, introspector.introspect(token[0]))
