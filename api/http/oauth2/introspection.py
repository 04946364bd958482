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

from api.http.oauth2.token import send_json
from api.http.oauth2.token_requests import caller_and_token
from api.http.runtime import runtime_of
from api.usecases.introspection import (
    TokenIntrospector,
)


@asgi("/oauth2/introspect", copy_scope=False)
async def introspection_endpoint(scope: Scope, receive: Receive, send: Send) -> None:
    """POST /oauth2/introspect (RFC 7662 §2.1)."""
    introspector: TokenIntrospector = runtime_of(scope["app"].state).introspector
    _, token = await caller_and_token(
        scope, receive, "/oauth2/introspect", introspector.require_introspect_scope
    )
    await send_json(send, introspector.introspect(token))
