"""Token revocation, RFC 7009: `POST /oauth2/revoke`, and the admin's single-token revocation.

"The authorization server responds with HTTP status code 200 if the token has been revoked
successfully or if the client submitted an invalid token" (§2.2). A client may revoke only
its own tokens: another client's token is `unauthorized_client`, and nothing changes.
Revoking is a `Revoked` event on the token; a second revocation writes nothing.
"""

from __future__ import annotations

import asyncio

from litestar import asgi
from litestar.types import Receive, Scope, Send

from api.http.oauth2.token import send_json
from api.http.oauth2.token_requests import caller_and_token
from api.http.runtime import runtime_of
from api.usecases.revocation import TokenRevoker


@asgi("/oauth2/revoke", copy_scope=False)
async def revocation_endpoint(scope: Scope, receive: Receive, send: Send) -> None:
    """POST /oauth2/revoke (RFC 7009 §2.1); `token_type_hint` is accepted and not needed."""
    caller, token = await caller_and_token(scope, receive, "/oauth2/revoke")
    revoker: TokenRevoker = runtime_of(scope["app"].state).revoker
    await asyncio.to_thread(revoker.revoke_presented, caller.client_id, token)
    await send_json(send, {})
