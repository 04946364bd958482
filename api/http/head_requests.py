"""HEAD answered wherever GET is (RFC 9110 §9.3.2): the GET's status and header fields, no content.

"The server SHOULD send the same header fields in response to a HEAD request as it would have
sent if the request method had been GET", and general-purpose servers MUST support HEAD
(§9.1). Load balancers and uptime checks probe with it. Litestar routes HEAD only to handlers
declared for it, so every GET route answered 405.

`HeadAsGet` wraps the router: a HEAD request is handed on as a GET of the same target (same
guards, same rate limits, the same handler), its response's body is dropped, and its
`content-length` is the GET's. Only the copy the router sees says GET: the server's own scope
still says HEAD, so uvicorn writes no body either, and the request id, the access log and the
latency histogram name the method the client used. `Allow`, in a 405 or an OPTIONS answer,
lists HEAD beside GET (`with_head`).
"""

from __future__ import annotations

from typing import cast

from litestar.enums import ScopeType
from litestar.types import ASGIApp, HTTPResponseStartEvent, HTTPScope, Message, Receive, Scope, Send


def with_head(allow: str) -> str:
    """An `Allow` value with HEAD listed wherever GET is."""
    methods = [m.strip() for m in allow.split(",") if m.strip()]
    if "GET" in methods and "HEAD" not in methods:
        methods.insert(methods.index("GET") + 1, "HEAD")
    return ", ".join(methods)


def _allow_with_head(message: HTTPResponseStartEvent) -> HTTPResponseStartEvent:
    message["headers"] = [
        (name, with_head(value.decode("latin-1")).encode("latin-1"))
        if name.lower() == b"allow"
        else (name, value)
        for name, value in message.get("headers", ())
    ]
    return message


class HeadAsGet:
    """The router's layer for HEAD (as GET, without the body) and OPTIONS (`Allow`)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await self.app(scope, receive, send)
        elif scope["method"] == "HEAD":
            await self._as_get(scope, receive, send)
        elif scope["method"] == "OPTIONS":
            await self.app(scope, receive, _allowing_head(send))
        else:
            await self.app(scope, receive, send)

    async def _as_get(self, scope: HTTPScope, receive: Receive, send: Send) -> None:
        scope.setdefault("state", {})  # shared with the copy: the access log reads it after
        as_get = cast(HTTPScope, {**scope, "method": "GET"})

        async def without_body(message: Message) -> None:
            if message["type"] == "http.response.start":
                await send(_allow_with_head(message))
            elif message["type"] == "http.response.body":
                more = message.get("more_body", False)
                await send({"type": "http.response.body", "body": b"", "more_body": more})
            else:
                await send(message)

        try:
            await self.app(as_get, receive, without_body)
        finally:
            template = as_get.get("path_template")
            if template is not None:  # the latency histogram's route label
                scope["path_template"] = template


def _allowing_head(send: Send) -> Send:
    async def allowing_head(message: Message) -> None:
        if message["type"] == "http.response.start":
            message = _allow_with_head(message)
        await send(message)

    return allowing_head
