"""What introspection and revocation share: an authenticated caller and the one `token`.

Both endpoints authenticate their caller as the token endpoint does (RFC 7662 §2.1, RFC 7009
§2.1), every failure observed for the audit stream, then take exactly one `token` parameter.
"""

from __future__ import annotations

from collections.abc import Callable

from litestar.types import Receive, Scope

from api.http.client_address import client_address
from api.http.oauth2.security_observations import Observing
from api.http.oauth2.token import credentials_of, read_oauth_form
from api.http.runtime import runtime_of
from domain.client_record import ClientRecord
from domain.oauth_errors import InvalidRequest


async def caller_and_token(
    scope: Scope,
    receive: Receive,
    endpoint: str,
    allowed: Callable[[ClientRecord], None] | None = None,
) -> tuple[ClientRecord, str]:
    """The authenticated caller (refused by `allowed`, observed, when it may not call) and
    the token it presents, or the RFC error."""
    runtime = runtime_of(scope["app"].state)
    with Observing(scope, endpoint) as seen:
        headers, seen.params = await read_oauth_form(scope, receive)
        seen.credentials = credentials_of(scope, headers, seen.params)
        authenticated = await runtime.authenticator.authenticate(
            seen.credentials,
            runtime.clock.now(),
            f"{runtime.settings.issuer_url}{endpoint}",
            client_address(scope),
        )
        if allowed is not None:
            allowed(authenticated.client)
    token = seen.params.get("token")
    if not token or len(token) > 1:
        raise InvalidRequest("exactly one token parameter is required")
    return authenticated.client, token[0]
