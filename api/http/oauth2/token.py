"""The OAuth 2.0 endpoints under `/oauth2`: token (RFC 6749 §3.2, §4.4) and JWK Set (RFC 7517).

The token endpoint is the hot path, so it is plain ASGI: it reads its own body (capped at
16 KiB), reads the two headers it needs from the raw scope and sends one pre-encoded response.
`TokenRouteFirst` answers `/oauth2/token` before Litestar's router and exception middleware
(the route is still registered, for every other spelling of the path, and for
`api/http/openapi_docs.py`, which documents it); its errors go through the app's own
exception handlers. Measured here, skipping Litestar's request parsing and response
conversion gave about 20% more tokens/s; skipping the router too, with one-shot HMAC and one
ECDSA object, took the request from 194 to 167 µs of CPU in process.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import msgspec
from litestar import Litestar, Request, Response, asgi, get
from litestar._asgi.utils import is_valid_host
from litestar.enums import ScopeType
from litestar.exceptions import ClientException, MethodNotAllowedException
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from adapters.metrics import token_issued
from api.http.client_address import client_address
from api.http.errors import answer_exception
from api.http.oauth2.client_credentials import extract_credentials
from api.http.oauth2.form import (
    BodyTooLarge,
    parse_form,
    read_limited,
    require_form_content_type,
    single,
)
from api.http.oauth2.security_observations import Observing
from api.http.runtime import runtime_of
from api.logs import bind_client
from api.usecases.credentials import Credentials
from domain.oauth_errors import InvalidClient, InvalidRequest, UnsupportedGrantType
from domain.policy import TokenRequest

GRANT_TYPE = "client_credentials"
TOKEN_PATH = "/oauth2/token"  # noqa: S105 (a path, not a secret)
_RESPONSE_HEADERS = [
    (b"content-type", b"application/json"),
    (b"cache-control", b"no-store"),
    (b"pragma", b"no-cache"),
]


def _raw_headers(raw: Iterable[tuple[bytes, bytes]]) -> dict[bytes, str]:
    """The headers the token endpoint reads, latin-1 decoded as ASGI specifies."""
    found: dict[bytes, str] = {}
    for name, value in raw:
        if name in (b"content-type", b"authorization", b"content-length"):
            if name in found:
                raise InvalidRequest(f"the {name.decode()} header is repeated")
            found[name] = value.decode("latin-1")
    return found


async def read_oauth_form(
    scope: Scope, receive: Receive, repeatable: frozenset[str] = frozenset()
) -> tuple[dict[bytes, str], dict[str, list[str]]]:
    """The headers and form parameters of a POST to an OAuth endpoint, or the RFC error."""
    if scope.get("method") != "POST":
        raise MethodNotAllowedException(headers={"Allow": "POST"})
    headers = _raw_headers(scope["headers"])
    require_form_content_type(headers.get(b"content-type"))
    declared = headers.get(b"content-length", "0")
    if declared.isdigit() and int(declared) > BodyTooLarge.limit:
        raise BodyTooLarge
    return headers, parse_form(await read_limited(receive), repeatable)


def credentials_of(
    scope: Scope, headers: dict[bytes, str], params: dict[str, list[str]]
) -> Credentials:
    """The client credentials a request to an OAuth endpoint presents; malformed ones are
    `invalid_client` and spend from the caller's failure budget like wrong ones."""
    try:
        return extract_credentials(
            headers.get(b"authorization"),
            single(params, "client_id"),
            single(params, "client_secret"),
            single(params, "client_assertion_type"),
            single(params, "client_assertion"),
        )
    except InvalidClient:
        runtime_of(scope["app"].state).authenticator.note_failure(client_address(scope), None)
        raise


async def send_json(send: Send, body: dict[str, Any], status: int = 200) -> None:
    """One pre-encoded JSON response, never cached (RFC 6749 §5.1, RFC 7662 §2.2)."""
    content = msgspec.json.encode(body)
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [*_RESPONSE_HEADERS, (b"content-length", b"%d" % len(content))],
        }
    )
    await send({"type": "http.response.body", "body": content, "more_body": False})


async def issue_token(scope: Scope, receive: Receive, send: Send) -> None:
    """POST /oauth2/token: `grant_type=client_credentials`, RFC 6749 §4.4.2 and §5."""
    with Observing(scope, TOKEN_PATH) as seen:
        headers, seen.params = await read_oauth_form(scope, receive, frozenset({"resource"}))
        params = seen.params
        grant_type = single(params, "grant_type")
        if grant_type is None:
            raise InvalidRequest("grant_type is required")
        if grant_type != GRANT_TYPE:
            raise UnsupportedGrantType
        credentials = seen.credentials = credentials_of(scope, headers, params)
        token_request = TokenRequest(
            scope=single(params, "scope"), resources=tuple(params.get("resource", ()))
        )
        issuer = runtime_of(scope["app"].state).issuer
        issued = await issuer.issue(credentials, token_request, client_address(scope))
    token_issued(credentials.client_id)
    bind_client(credentials.client_id)
    await send_json(send, issued.response_body())


token_endpoint = asgi(TOKEN_PATH, copy_scope=False)(issue_token)


class TokenRouteFirst:
    """`/oauth2/token`, spelled exactly so, answered before Litestar's router (`app`)."""

    def __init__(self, app: ASGIApp, litestar: Litestar) -> None:
        skipped = _bypassed(litestar)
        if skipped:  # what the router or its middleware would apply, and this path would not
            raise RuntimeError(f"the token endpoint's own route would skip {skipped}")
        self.app = app
        self._litestar = litestar

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP or scope["path"] != TOKEN_PATH or scope.get("root_path"):
            await self.app(scope, receive, send)
            return
        scope["path_template"] = TOKEN_PATH  # the latency histogram's route label
        started = False

        async def send_noting_start(message: Message) -> None:
            nonlocal started
            started = True
            await send(message)

        try:
            _require_valid_host(scope)
            await issue_token(scope, receive, send_noting_start)
        except Exception as exc:
            if started:  # as Litestar's middleware: nothing can be answered any more
                raise
            await answer_exception(self._litestar, scope, receive, send, exc)


def _require_valid_host(scope: Scope) -> None:
    """The router's first check: a malformed `Host` is a 400 before anything else."""
    for name, value in scope["headers"]:
        if name == b"host":
            if not is_valid_host(value):
                raise ClientException("Invalid host header")
            return


def _bypassed(app: Litestar) -> list[str]:
    """The app-level settings the token endpoint's own route would not apply."""
    found = {
        "allowed_hosts": app.allowed_hosts,
        "cors_config": app.cors_config,
        "middleware": app.middleware,
        "before_send": app.before_send,
        "after_exception": app.after_exception,
        "guards": token_endpoint.resolve_guards(),
        "status-code exception handlers": [k for k in app.exception_handlers if isinstance(k, int)],
    }
    return [name for name, value in found.items() if value]


@get(
    "/oauth2/jwks",
    summary="The public keys that verify access tokens (RFC 7517 JWK Set)",
    tags=["oauth2"],
)
async def jwks(request: Request[Any, Any, Any]) -> Response[dict[str, Any]]:
    runtime = runtime_of(request.app.state)
    return Response(
        runtime.keys.jwks(runtime.clock.now()), headers={"Cache-Control": "public, max-age=60"}
    )
