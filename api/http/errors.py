"""Rendering errors: RFC 6749 §5.2 JSON on the OAuth endpoints, never a bare 500."""

from __future__ import annotations

import logging
from typing import Any

from litestar import Litestar, Request, Response
from litestar.exceptions import HTTPException
from litestar.types import Receive, Scope, Send

from api.http.head_requests import with_head
from domain.oauth_errors import InvalidClient, OAuthError, TooManyRequests
from domain.redaction import redact

log = logging.getLogger("keyledger.errors")

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


async def answer_exception(
    app: Litestar, scope: Scope, receive: Receive, send: Send, exc: Exception
) -> None:
    """Answer `exc` with the app's handler for its nearest type, as Litestar's middleware does."""
    handlers = app.exception_handlers
    handler = next(handlers[kind] for kind in type(exc).__mro__ if kind in handlers)
    request: Request[Any, Any, Any] = Request(scope, receive, send)
    response = handler(request, exc)
    await response.to_asgi_response(app=None, request=request)(scope, receive, send)


def oauth_error_response(request: Request[Any, Any, Any], exc: OAuthError) -> Response[Any]:
    """RFC 6749 §5.2: `error` and `error_description`, with `no-store` caching."""
    headers = dict(NO_STORE)
    if isinstance(exc, InvalidClient):
        # §5.2: 401 with WWW-Authenticate for header auth; we send it for every client
        # authentication failure so responses do not differ by cause.
        headers["WWW-Authenticate"] = 'Basic realm="keyledger", charset="UTF-8"'
    if isinstance(exc, TooManyRequests):
        headers["Retry-After"] = str(exc.retry_after)  # RFC 6585 §4, RFC 9110 §10.2.3
    log.info(
        "oauth error %s on %s: %s",
        exc.error,
        request.url.path,
        exc.reason,
    )
    return Response(
        {"error": exc.error, "error_description": redact(exc.description)},
        status_code=exc.status_code,
        headers=headers,
    )


def http_error_response(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    """Framework errors (413, 405, 404, ...) in the OAuth error shape on every path."""
    if exc.status_code >= 500:
        log.error("server error on %s: %s", request.url.path, exc.detail)
        body = {"error": "server_error", "error_description": "internal error"}
    else:
        error = {404: "not_found", 405: "method_not_allowed"}.get(
            exc.status_code, "invalid_request"
        )
        body = {"error": error, "error_description": redact(str(exc.detail))}
    headers = {  # HEAD is answered wherever GET is (api/http/head_requests.py)
        name: with_head(value) if name.lower() == "allow" else value
        for name, value in (exc.headers or {}).items()
    }
    return Response(body, status_code=exc.status_code, headers=NO_STORE | headers)


def unexpected_error_response(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    log.exception("unexpected error on %s", request.url.path, exc_info=exc)
    return Response(
        {"error": "server_error", "error_description": "internal error"},
        status_code=500,
        headers=NO_STORE,
    )


def _admin_error(status: int, error: str, exc: Exception) -> Response[Any]:
    return Response({"error": error, "error_description": redact(str(exc))}, status_code=status)


def not_found_response(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    return _admin_error(404, "not_found", exc)


def conflict_response(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    return _admin_error(409, "conflict", exc)


def precondition_failed_response(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """RFC 9110 §13.1.1: an `If-Match` that does not name the current version."""
    return _admin_error(412, "precondition_failed", exc)


def unprocessable_response(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    return _admin_error(422, "invalid_request", exc)
