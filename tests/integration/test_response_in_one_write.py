"""Each response leaves the HTTP server in one write: head and body together (real sockets).

uvicorn alone sends a response's head and body as two writes. The server's protocol holds the
head until the body comes; these tests watch the writes its transport receives.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from uvicorn.config import Config
from uvicorn.server import ServerState

from api.http.head_limits import BoundedHttpToolsProtocol, HeadLimits

BODY = b'{"ok":true}'


class _Writes:
    """The connection's real transport, with every write it is given kept in order."""

    def __init__(self, transport: asyncio.Transport, writes: list[bytes]) -> None:
        self._transport = transport
        self._writes = writes

    def write(self, data: bytes) -> None:
        self._writes.append(bytes(data))
        self._transport.write(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


async def _app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Reads the request's body, then answers `BODY` (or fails after the head: /broken)."""
    if scope["type"] != "http":
        return
    await receive()
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(BODY))]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    if scope["path"] == "/broken":
        raise RuntimeError("the body never comes")
    await send({"type": "http.response.body", "body": BODY, "more_body": False})


async def _exchange(
    request: bytes, expect_close: bool = False, bodies: int | None = None
) -> tuple[list[bytes], bytes]:
    """Serve one connection that sends `request`: the server's writes, and what arrived
    (once `bodies` responses with a body came, by default one per request)."""
    config = Config(app=_app, log_config=None, access_log=False, lifespan="off")
    config.load()
    state = ServerState()
    writes: list[bytes] = []

    class Watched(BoundedHttpToolsProtocol):
        limits = HeadLimits(max_bytes=8192, max_headers=100)

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(_Writes(transport, writes))  # type: ignore[arg-type]

    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: Watched(config=config, server_state=state, app_state={}), "127.0.0.1", 0
    )
    port = server.sockets[0].getsockname()[1]
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request)
        await writer.drain()
        if expect_close:
            arrived = await asyncio.wait_for(reader.read(), 5)
        else:
            arrived = b""
            expected = request.count(b"HTTP/1.1\r\n") if bodies is None else bodies
            while arrived.count(BODY) < expected:
                arrived += await asyncio.wait_for(reader.read(65536), 5)
    finally:
        writer.close()
        server.close()
        for connection in list(state.connections):
            connection.shutdown()
        await server.wait_closed()
    return writes, arrived


def _post(path: bytes = b"/", extra: bytes = b"") -> bytes:
    return b"POST " + path + b" HTTP/1.1\r\nhost: t\r\ncontent-length: 2\r\n" + extra + b"\r\n{}"


def test_a_response_goes_out_in_one_write_holding_head_and_body() -> None:
    writes, arrived = asyncio.run(_exchange(_post()))
    assert len(writes) == 1
    assert writes[0].startswith(b"HTTP/1.1 200 OK\r\n")
    assert writes[0].endswith(b"\r\n\r\n" + BODY)
    assert arrived == writes[0]


def test_each_response_on_a_kept_alive_connection_is_one_write() -> None:
    writes, arrived = asyncio.run(_exchange(_post() + _post() + _post()))
    assert [w.endswith(BODY) and w.startswith(b"HTTP/1.1 200") for w in writes] == [True] * 3
    assert arrived == b"".join(writes)


def test_an_interim_100_continue_is_sent_at_once_not_held_for_the_response() -> None:
    writes, _ = asyncio.run(_exchange(_post(extra=b"expect: 100-continue\r\n")))
    assert writes[0] == b"HTTP/1.1 100 Continue\r\n\r\n"
    assert len(writes) == 2
    assert writes[1].endswith(BODY)


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_a_head_whose_body_never_comes_is_still_sent_before_the_connection_closes() -> None:
    writes, arrived = asyncio.run(_exchange(_post(b"/broken"), expect_close=True))
    assert len(writes) == 1
    assert writes[0].startswith(b"HTTP/1.1 200 OK\r\n")
    assert arrived == writes[0]


def test_a_response_to_head_is_sent_at_once_on_a_kept_alive_connection() -> None:
    head = b"HEAD / HTTP/1.1\r\nhost: t\r\n\r\n"
    writes, arrived = asyncio.run(_exchange(head + _post(), bodies=1))
    assert len(writes) == 2
    assert writes[0].startswith(b"HTTP/1.1 200 OK\r\n")
    assert writes[0].endswith(b"\r\n\r\n")  # the head alone: HEAD has no body
    assert writes[1].endswith(BODY)
    assert arrived == b"".join(writes)
