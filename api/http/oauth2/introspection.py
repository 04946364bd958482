"""Token introspection, RFC 7662: `POST /oauth2/introspect`.

The caller authenticates as a client (the token endpoint's methods) whose allowed scopes
include `keyledger:introspect`; an authenticated caller without it gets 403
`unauthorized_client`. The decision needs no database: the token's signature is verified
locally (cached), then its client's record and the revoked set are read from memory: the
one validation of `api.usecases.access_tokens`, which the admin API applies too.
"""

from __future__ import annotations

from litestar import asgi
from litestar.types import Receive, Scope, Send

from api.http.oauth2.security_observations import Observing
from api.http.oauth2.token import credentials_of, peer_address, read_oauth_form, send_json
from api.http.runtime import runtime_of
from api.usecases.introspection import (
    TokenIntrospector,
)
from domain.oauth_errors import InvalidRequest


@asgi("/oauth2/introspect", copy_scope=False)
async def introspection_endpoint(scope: Scope, receive: Receive, send: Send) -> None:
    """POST /oauth2/introspect (RFC 7662 §2.1)."""
    runtime = runtime_of(scope["app"].state)
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
