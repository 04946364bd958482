"""The OAuth endpoints' requests, run by a request-response cycle lighter than uvicorn's.

uvicorn's `RequestResponseCycle` serves any ASGI response: streamed or chunked, to a `HEAD`,
after a `100 Continue`, with its access log. Every request pays for that generality: a
constant ASGI answer took 27.5 µs a request through it and 18.4 µs through this cycle (wrk
against one worker, alternating). `POST /oauth2/token` (and `/introspect`, `/revoke`) need
none of it: each answer, or its error, is one small JSON body of known length. So the
protocol (`api/http/head_limits.py`) hands a request for one of them to `WholeResponseCycle`:
the same ASGI app, scope, body and flow control; the response's head and body leave in one
write once its last body part is sent. Every other request keeps uvicorn's cycle.
Measured (alternating runs): tokens/s +5.0% on PostgreSQL (`serve --workers 2`), +4.9% on
SQLite; introspection requests/s +7.6% (`bench.introspection_bench`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from uvicorn.protocols.http.flow_control import FlowControl
from uvicorn.protocols.http.httptools_impl import HEADER_RE, HEADER_VALUE_RE, STATUS_LINE

log = logging.getLogger("uvicorn.error")

# The OAuth endpoints' request targets, spelled exactly so: each answers one small JSON body.
WHOLE_RESPONSE_TARGETS = frozenset({b"/oauth2/token", b"/oauth2/introspect", b"/oauth2/revoke"})
_BODYLESS = (204, 304)
_SERVER_ERROR = (
    b"content-type: text/plain; charset=utf-8\r\n"
    b"content-length: 21\r\nconnection: close\r\n\r\nInternal Server Error"
)


def _nothing() -> None:
    pass


class WholeResponseCycle:
    """One request and its whole response on a connection: uvicorn's cycle, for answers sent
    whole. The protocol reads `body`, `more_body`, `message_event`, `keep_alive`,
    `disconnected` and `response_complete` as it does on uvicorn's own cycle."""

    __slots__ = (
        "_chunks",
        "_head",
        "body",
        "default_headers",
        "disconnected",
        "flow",
        "keep_alive",
        "message_event",
        "more_body",
        "on_response",
        "response_complete",
        "response_started",
        "scope",
        "transport",
    )

    def __init__(
        self,
        scope: Any,
        transport: asyncio.Transport,
        flow: FlowControl,
        default_headers: list[tuple[bytes, bytes]],
        keep_alive: bool,
        on_response: Callable[[], None],
    ) -> None:
        self.scope = scope
        self.transport = transport
        self.flow = flow
        self.default_headers = default_headers
        self.keep_alive = keep_alive
        self.on_response = on_response
        self.message_event = asyncio.Event()
        self.disconnected = False
        self.body = bytearray()
        self.more_body = True
        self.response_started = False
        self.response_complete = False
        self._head: tuple[int, list[tuple[bytes, bytes]]] = (500, [])
        self._chunks: list[bytes] = []

    async def run_asgi(self, app: Any) -> None:
        try:
            result = await app(self.scope, self.receive, self.send)
        except BaseException as exc:
            log.error("Exception in ASGI application\n", exc_info=exc)
            self._end_unanswered()
        else:
            if result is not None:
                log.error("ASGI callable should return None, but returned %r.", result)
                self.transport.close()
            elif not self.response_complete and not self.disconnected:
                log.error("ASGI callable returned without completing its response.")
                self._end_unanswered()
        finally:
            self.on_response = _nothing

    def _end_unanswered(self) -> None:
        """A 500 if nothing was written yet, then the connection closes either way."""
        if not self.response_complete and not self.disconnected:
            lines = [STATUS_LINE[500]]
            for name, value in self.default_headers:  # the server's own: valid
                lines += (name, b": ", value, b"\r\n")
            self.transport.write(b"".join(lines) + _SERVER_ERROR)
        self.transport.close()

    async def receive(self) -> dict[str, Any]:
        if not self.disconnected and not self.response_complete:
            self.flow.resume_reading()
            await self.message_event.wait()
            self.message_event.clear()
        if self.disconnected or self.response_complete:
            return {"type": "http.disconnect"}
        message = {"type": "http.request", "body": bytes(self.body), "more_body": self.more_body}
        self.body = bytearray()
        return message

    async def send(self, message: Any) -> None:
        if self.flow.write_paused and not self.disconnected:
            await self.flow.drain()
        if self.disconnected:
            return
        kind = message["type"]
        if not self.response_started:
            if kind != "http.response.start":
                raise RuntimeError(f"Expected 'http.response.start', but got {kind!r}.")
            self.response_started = True
            self._head = (message["status"], list(message.get("headers", ())))
            return
        if self.response_complete or kind != "http.response.body":
            raise RuntimeError(f"Unexpected ASGI message {kind!r}.")
        self._chunks.append(message.get("body", b""))
        if message.get("more_body", False):
            return
        body = b"".join(self._chunks)
        self._chunks = []
        self.transport.write(self._encoded_head(len(body)) + body)
        self.response_complete = True
        self.message_event.set()
        if not self.keep_alive:
            self.transport.close()
        self.on_response()

    def _encoded_head(self, length: int) -> bytes:
        """The status line and headers, refusing what could split the response (as uvicorn
        does). The body's length is written here, once: a declared `content-length` must
        be plain digits equal to it (or, on a 204 or 304, be absent or 0)."""
        status, headers = self._head
        if not 200 <= status < 600:
            raise RuntimeError(f"A whole response cannot have the status {status}.")
        bodyless = status in _BODYLESS
        if bodyless and length:
            raise RuntimeError(f"A {status} response has no body.")
        lines = [STATUS_LINE[status]]
        close = False
        for name, value in (*self.default_headers, *headers):
            if HEADER_RE.search(name) or HEADER_VALUE_RE.search(value):
                raise RuntimeError("Invalid HTTP header name or value.")
            name = name.lower()
            if name == b"content-length":
                if not value.isdigit() or int(value) != length:
                    raise RuntimeError(f"Response body of {length} bytes, declared {value!r}.")
                continue
            if name == b"transfer-encoding":
                raise RuntimeError("A whole response is not sent in chunks.")
            if name == b"connection":
                close = close or b"close" in [t.strip() for t in value.lower().split(b",")]
            lines += (name, b": ", value, b"\r\n")
        if not bodyless:
            lines.append(b"content-length: %d\r\n" % length)
        if close:
            self.keep_alive = False
        elif not self.keep_alive:
            lines.append(b"connection: close\r\n")
        lines.append(b"\r\n")
        return b"".join(lines)
