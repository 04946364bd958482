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

from api.http.oauth2.security_observations import Observing
from api.http.oauth2.token import credentials_of, peer_address, read_oauth_form, send_json
from api.http.runtime import runtime_of
from api.usecases.revocation import TokenRevoker
from domain.oauth_errors import InvalidRequest


@asgi("/oauth2/revoke", copy_scope=False)
async def revocation_endpoint(scope: Scope, receive: Receive, send: Send) -> None:
    """POST /oauth2/revoke (RFC 7009 §2.1); `token_type_hint` is accepted and not needed."""
    runtime = runtime_of(scope["app"].state)
    with Observing(scope, "/oauth2/revoke") as seen:
        headers, seen.params = await read_oauth_form(scope, receive)
        params = seen.params
        seen.credentials = credentials_of(scope, headers, params)
        caller = (
            await runtime.authenticator.authenticate(
                seen.credentials,
                runtime.clock.now(),
                f"{runtime.settings.issuer_url}/oauth2/revoke",
                peer_address(scope),
            )
        ).client
    token = params.get("token")
    if not token or len(token) > 1:
        raise InvalidRequest("exactly one token parameter is required")
    revoker: TokenRevoker = runtime.revoker
    await asyncio.to_thread(revoker.revoke_presented, caller.client_id, token[0])
    await send_json(send, {})
