"""Bounded request heads: uvicorn's httptools protocol with header size and count limits.

httptools (llhttp) has no limit of its own: it buffers a header line of any length until it
ends, and uvicorn keeps every header. This protocol counts the request line and headers as
they are parsed and answers 431 (RFC 6585 §5) and closes the connection once a request's head
passes `KEYLEDGER_MAX_HEADER_BYTES` or `KEYLEDGER_MAX_HEADERS`, before the ASGI app sees it.
A header still being received is counted by the bytes of every read that carried only head
bytes, so what one connection holds stays below the limit plus one read (at most 256 KiB).

It also answers each response in one write: uvicorn writes a response's status line and
headers, then its body, as two sends (two syscalls, two TCP segments, two wake-ups of the
client). `ResponseInOneWrite` holds the head back until the body's first write and sends both
together, as Node's `res.end(body)` does.
"""

from __future__ import annotations

import asyncio
import functools
from dataclasses import dataclass
from typing import Any, ClassVar, cast

import httptools
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle
from uvicorn.server import ServerState

from api.http.whole_response import WHOLE_RESPONSE_TARGETS, WholeResponseCycle
from api.settings import Settings

_LINE_OVERHEAD = 4  # ": " and CRLF of a header line
_BODY = b'{"error":"invalid_request","error_description":"request header fields too large"}'
_RESPONSE = b"".join(
    [
        b"HTTP/1.1 431 Request Header Fields Too Large\r\n",
        b"content-type: application/json\r\n",
        b"cache-control: no-store\r\n",
        b"content-length: " + str(len(_BODY)).encode() + b"\r\n",
        b"connection: close\r\n\r\n",
        _BODY,
    ]
)


@dataclass(frozen=True)
class HeadLimits:
    max_bytes: int
    max_headers: int


@functools.cache
def _configured() -> HeadLimits:
    """This process's limits, from the same environment `keyledger serve` was started with."""
    settings = Settings.from_env()
    return HeadLimits(settings.max_header_bytes, settings.max_headers)


class ResponseInOneWrite:
    """One request's view of the connection's transport: the write that sends its response's
    head waits for the next write (the body's first) and goes out with it.

    uvicorn's cycle writes the head as soon as the response starts; any earlier write (an
    interim `100 Continue`) goes straight through. Closing first sends what is held, so a
    response whose body never comes ends exactly as it did without this.
    """

    __slots__ = ("_cycle", "_head", "_holding", "_transport")

    def __init__(self, transport: Any, cycle: RequestResponseCycle) -> None:
        self._transport = transport
        self._cycle = cycle
        self._head: bytes | None = None
        self._holding = True  # until the head has been held once

    def write(self, data: bytes) -> None:
        head = self._head
        if head is not None:
            self._head = None
            self._transport.write(head + data)
        elif self._holding and self._cycle.response_started:
            self._holding = False
            self._head = data
        else:
            self._transport.write(data)

    def close(self) -> None:
        if self._head is not None:
            self._transport.write(self._head)
            self._head = None
        self._transport.close()

    def __getattr__(self, name: str) -> Any:  # is_closing, get_extra_info...: the transport's
        return getattr(self._transport, name)


class HeadTooLarge(Exception):
    """Raised from a parser callback to stop parsing a request whose head is over a limit."""


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """`HttpToolsProtocol` that refuses request heads over the configured limits with 431."""

    limits: ClassVar[HeadLimits | None] = None  # None: from the environment, once per process

    def __init__(
        self, config: Config, server_state: ServerState, app_state: dict[str, Any], **kw: Any
    ) -> None:
        super().__init__(config, server_state, app_state, **kw)
        limits = self.limits or _configured()
        self._max_bytes, self._max_headers = limits.max_bytes, limits.max_headers
        self._reading_head = False  # between the start of a request and the end of its head
        self._idle = True  # between requests: the next byte starts a head
        self._begun = 0
        self._head_bytes = 0  # exact: the request target and every complete header line
        self._head_reads = 0  # reads that carried nothing but head bytes
        self._refused = False

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        self._unset_keepalive_if_required()
        # A read carries only head bytes when it started inside a head (or between requests,
        # then starting one) and ended inside that same head.
        allowed_begins = 0 if self._reading_head else 1 if self._idle else -1
        begun = self._begun
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserCallbackError:
            if self._refused:
                self._refuse()
                return
            self._bad_request()
            return
        except httptools.HttpParserError:
            self._bad_request()
            return
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
            return
        if self._reading_head and self._begun - begun == allowed_begins:
            self._head_reads += len(data)  # the head has not ended: all of this read is head
            if self._head_reads > self._max_bytes:
                self._refused = True
                self._refuse()

    def _bad_request(self) -> None:
        message = "Invalid HTTP request received."
        self.logger.warning(message)
        self.send_400_response(message)

    def _refuse(self) -> None:
        self.transport.write(_RESPONSE)
        self.transport.close()

    def _over(self, extra: int) -> None:
        self._head_bytes += extra
        if self._head_bytes > self._max_bytes:
            self._refused = True
            raise HeadTooLarge

    def on_message_begin(self) -> None:
        self._reading_head, self._idle = True, False
        self._begun += 1
        self._head_bytes = self._head_reads = 0
        super().on_message_begin()

    def on_url(self, url: bytes) -> None:
        self._over(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        if not self._reading_head:  # a chunked body's trailer field: never a header
            return
        self._over(len(name) + len(value) + _LINE_OVERHEAD)
        if len(self.headers) >= self._max_headers:
            self._refused = True
            raise HeadTooLarge
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._reading_head = False
        if self._takes_whole_response():
            self._run_whole_response()
            return
        before = self.cycle
        super().on_headers_complete()
        # A new request's cycle (not an upgrade); a response to HEAD has no body to carry it.
        if self.cycle is not before and self.scope["method"] != "HEAD":
            # Not a Transport subclass: its every other method is the transport's own.
            self.cycle.transport = cast(
                asyncio.Transport, ResponseInOneWrite(self.transport, self.cycle)
            )

    def on_message_complete(self) -> None:
        self._idle = True
        super().on_message_complete()

    def _takes_whole_response(self) -> bool:
        """A request `WholeResponseCycle` runs: a target it serves, spelled exactly so, by
        `POST` over HTTP/1.1, with nothing uvicorn's cycle would do for it (no `Expect`, no
        upgrade, no root path or concurrency limit), not queued behind another request."""
        return (
            self.url in WHOLE_RESPONSE_TARGETS
            and self.parser.get_method() == b"POST"
            and self.parser.get_http_version() == "1.1"
            and not self.expect_100_continue
            and not self.parser.should_upgrade()
            and not self.root_path
            and self.limit_concurrency is None
            and (self.cycle is None or self.cycle.response_complete)
        )

    def _run_whole_response(self) -> None:
        """What uvicorn's `on_headers_complete` does, for a target with no query and no
        escapes, with the lighter cycle."""
        scope = self.scope
        scope["method"] = "POST"
        scope["path"] = self.url.decode("ascii")
        scope["raw_path"] = self.url
        scope["query_string"] = b""
        self.cycle = WholeResponseCycle(  # type: ignore[assignment]
            scope,
            self.transport,
            self.flow,
            self.server_state.default_headers,
            keep_alive=self.parser.should_keep_alive(),
            on_response=self.on_response_complete,
        )
        self._start_asgi_task(self.cycle, self.app)
