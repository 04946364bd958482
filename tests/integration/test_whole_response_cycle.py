"""The token endpoint's requests run by the whole-response cycle (real sockets, uvicorn's
protocol with keyledger's): same answers as uvicorn's cycle, head and body in one write."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from uvicorn.config import Config
from uvicorn.server import ServerState

from api.http.head_limits import BoundedHttpToolsProtocol, HeadLimits
from api.http.whole_response import WholeResponseCycle

TOKEN = b"/oauth2/token"
App = Callable[[dict[str, Any], Any, Any], Awaitable[None]]


async def answer_body(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Echoes the request's body back, then `|`, naming the target in `x-path`."""
    if scope["type"] != "http":
        return
    body = b""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        body += message["body"]
        if not message["more_body"]:
            break
    await answer_body_of(body, scope, send)


async def answer_body_of(body: bytes, scope: dict[str, Any], send: Any) -> None:
    body += b"|"
    headers = [(b"x-path", scope["raw_path"]), (b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})


class Served:
    """One server on a free port; every protocol it made, to look at their cycles."""

    def __init__(self, app: App) -> None:
        self.app = app
        self.state = ServerState()
        self.writes: list[bytes] = []
        self.cycles: list[type] = []
        self.port = 0
        self._server: asyncio.AbstractServer | None = None

    async def __aenter__(self) -> Served:
        config = Config(app=self.app, log_config=None, access_log=False, lifespan="off")
        config.load()
        served = self

        class Watched(BoundedHttpToolsProtocol):
            limits = HeadLimits(max_bytes=8192, max_headers=100)

            def on_headers_complete(self) -> None:
                super().on_headers_complete()
                served.cycles.append(type(self.cycle))

        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: Watched(config=config, server_state=self.state, app_state={}), "127.0.0.1", 0
        )
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for connection in list(self.state.connections):
            connection.shutdown()
        await self._server.wait_closed()

    async def exchange(self, *parts: bytes, responses: int = 1, pause: float = 0.0) -> bytes:
        """Send `parts` (with `pause` between them) on one connection; read until `responses`
        whole responses or the server closes."""
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        try:
            for part in parts:
                writer.write(part)
                await writer.drain()
                await asyncio.sleep(pause)
            arrived = b""
            while len(split_responses(arrived)) < responses:
                chunk = await asyncio.wait_for(reader.read(65536), 5)
                if not chunk:
                    break
                arrived += chunk
            return arrived
        finally:
            writer.close()


def post(
    target: bytes = TOKEN, body: bytes = b"a=1", extra: bytes = b"", version: bytes = b"1.1"
) -> bytes:
    return (
        b"POST " + target + b" HTTP/" + version + b"\r\nhost: t\r\n"
        b"content-length: %d\r\n" % len(body) + extra + b"\r\n" + body
    )


def split_responses(data: bytes) -> list[tuple[bytes, bytes]]:
    """(head, body) of each whole response framed by `content-length` in `data`."""
    found = []
    while b"\r\n\r\n" in data:
        head, rest = data.split(b"\r\n\r\n", 1)
        if head.startswith(b"HTTP/1.1 1"):  # an interim response: no body
            data = rest
            continue
        length = re.search(rb"(?im)^content-length: (\d+)\r?$", head)
        if length is None:
            break
        size = int(length.group(1))
        if len(rest) < size:
            break
        found.append((head, rest[:size]))
        data = rest[size:]
    return found


def run(coroutine: Awaitable[Any]) -> Any:
    return asyncio.run(coroutine)  # type: ignore[arg-type]


async def _serve(
    app: App, *parts: bytes, responses: int = 1, pause: float = 0.0
) -> tuple[Served, bytes]:
    async with Served(app) as served:
        arrived = await served.exchange(*parts, responses=responses, pause=pause)
    return served, arrived


@pytest.mark.parametrize("target", [b"/oauth2/introspect", b"/oauth2/revoke"])
def test_introspection_and_revocation_requests_are_answered_whole_too(target: bytes) -> None:
    served, arrived = run(_serve(answer_body, post(target)))
    assert served.cycles == [WholeResponseCycle]
    assert [body for _, body in split_responses(arrived)] == [b"a=1|"]


def test_a_token_request_is_answered_with_its_length_in_one_write() -> None:
    served, arrived = run(_serve(answer_body, post(body=b"grant_type=x")))
    assert served.cycles == [WholeResponseCycle]
    [(head, body)] = split_responses(arrived)
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"content-length: 13" in head
    assert body == b"grant_type=x|"


@pytest.mark.parametrize(
    "target",
    [b"/oauth2/token?x=1", b"/oauth2/token/", b"/oauth2/%74oken", b"/oauth2/TOKEN", b"/other"],
)
def test_any_other_target_keeps_uvicorns_cycle(target: bytes) -> None:
    served, arrived = run(_serve(answer_body, post(target)))
    assert served.cycles != [WholeResponseCycle]
    assert [body for _, body in split_responses(arrived)] == [b"a=1|"]


def test_a_request_over_http_1_0_keeps_uvicorns_cycle() -> None:
    served, _ = run(_serve(answer_body, post(version=b"1.0")))
    assert served.cycles != [WholeResponseCycle]


def test_a_request_expecting_100_continue_gets_it_from_uvicorns_cycle() -> None:
    served, arrived = run(_serve(answer_body, post(extra=b"expect: 100-continue\r\n")))
    assert served.cycles != [WholeResponseCycle]
    assert arrived.startswith(b"HTTP/1.1 100 Continue\r\n\r\n")


def test_requests_kept_alive_on_one_connection_are_answered_in_order() -> None:
    bodies = [b"a=%d" % i for i in range(3)]
    parts = [post(body=b) for b in bodies]
    served, arrived = run(_serve(answer_body, *parts, responses=3, pause=0.05))
    assert [b for _, b in split_responses(arrived)] == [b + b"|" for b in bodies]
    assert served.cycles == [WholeResponseCycle] * 3


def test_pipelined_requests_wait_for_the_one_in_flight_and_come_back_in_order() -> None:
    bodies = [b"a=%d" % i for i in range(4)]
    _, arrived = run(_serve(answer_body, b"".join(post(body=b) for b in bodies), responses=4))
    assert [b for _, b in split_responses(arrived)] == [b + b"|" for b in bodies]


def test_a_pipelined_request_is_not_answered_before_a_slower_one_ahead_of_it() -> None:
    async def slow_first(scope: dict[str, Any], receive: Any, send: Any) -> None:
        message = await receive()
        if message["body"] == b"a=slow":
            await asyncio.sleep(0.2)
        await answer_body_of(message["body"], scope, send)

    _, arrived = run(_serve(slow_first, post(body=b"a=slow") + post(body=b"a=fast"), responses=2))
    assert [b for _, b in split_responses(arrived)] == [b"a=slow|", b"a=fast|"]


def test_connection_close_is_answered_and_honoured() -> None:
    served, arrived = run(_serve(answer_body, post(extra=b"connection: close\r\n"), responses=2))
    [(head, _)] = split_responses(arrived)  # read to the end: the server closed
    assert b"connection: close" in head
    assert served.cycles == [WholeResponseCycle]


def test_a_body_arriving_in_pieces_is_read_whole() -> None:
    request = post(body=b"grant_type=client_credentials")
    _, arrived = run(_serve(answer_body, request[:-20], request[-20:-5], request[-5:], pause=0.05))
    [(_, body)] = split_responses(arrived)
    assert body == b"grant_type=client_credentials|"


async def fails_before_answering(scope: dict[str, Any], receive: Any, send: Any) -> None:
    await receive()
    raise RuntimeError("broken")


async def fails_after_the_head(scope: dict[str, Any], receive: Any, send: Any) -> None:
    await receive()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    raise RuntimeError("broken")


async def splits_the_response(scope: dict[str, Any], receive: Any, send: Any) -> None:
    await receive()
    headers = [(b"x-evil", b"a\r\nset-cookie: s=1")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": b"{}"})


async def declares_a_wrong_length(scope: dict[str, Any], receive: Any, send: Any) -> None:
    await receive()
    await send(
        {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"9")]}
    )
    await send({"type": "http.response.body", "body": b"{}"})


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
@pytest.mark.parametrize(
    "app",
    [fails_before_answering, fails_after_the_head, splits_the_response, declares_a_wrong_length],
)
def test_a_response_that_cannot_be_sent_whole_is_a_500_and_the_connection_closes(app: App) -> None:
    _, arrived = run(_serve(app, post(), post(), responses=3))  # the second is never answered
    assert arrived.startswith(b"HTTP/1.1 500 Internal Server Error\r\n")
    assert arrived.count(b"HTTP/1.1") == 1
    assert b"set-cookie" not in arrived


async def answers_in_parts(scope: dict[str, Any], receive: Any, send: Any) -> None:
    await receive()
    await send({"type": "http.response.start", "status": 201, "headers": []})
    for part in (b"{", b'"a":1', b"}"):
        await send({"type": "http.response.body", "body": part, "more_body": True})
    await send({"type": "http.response.body", "body": b"", "more_body": False})


def test_a_body_sent_in_parts_leaves_as_one_response_with_its_length() -> None:
    _, arrived = run(_serve(answers_in_parts, post()))
    [(head, body)] = split_responses(arrived)
    assert head.startswith(b"HTTP/1.1 201 Created\r\n")
    assert body == b'{"a":1}'


def test_a_client_gone_before_its_body_ends_is_told_disconnect() -> None:
    seen: list[str] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            seen.append(message["type"])
            if message["type"] == "http.disconnect" or not message["more_body"]:
                return

    async def scenario() -> None:
        async with Served(app) as served:
            _, writer = await asyncio.open_connection("127.0.0.1", served.port)
            writer.write(post(body=b"a=" + b"x" * 100)[:-50])
            await writer.drain()
            await asyncio.sleep(0.05)
            writer.close()
            for _ in range(100):
                if "http.disconnect" in seen:
                    break
                await asyncio.sleep(0.01)

    run(scenario())
    assert seen[-1] == "http.disconnect"


def test_a_request_in_flight_at_shutdown_is_answered_then_the_connection_closes() -> None:
    release = asyncio.Event()

    async def slow(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()
        await release.wait()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    async def scenario() -> bytes:
        async with Served(slow) as served:
            reader, writer = await asyncio.open_connection("127.0.0.1", served.port)
            writer.write(post())
            await writer.drain()
            await asyncio.sleep(0.05)
            for connection in list(served.state.connections):
                connection.shutdown()
            release.set()
            arrived = await asyncio.wait_for(reader.read(), 5)  # to the end: closed
            writer.close()
            return arrived

    arrived = run(scenario())
    [(head, body)] = split_responses(arrived)
    assert b"connection: close" in head
    assert body == b"{}"


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.tuples(st.sampled_from([TOKEN, b"/other", b"/oauth2/token?q"]), st.binary(max_size=40)),
        min_size=1,
        max_size=6,
    ),
    st.booleans(),
)
def test_every_request_on_a_connection_is_answered_once_in_order(
    requests: list[tuple[bytes, bytes]], pipelined: bool
) -> None:
    parts = [post(target, b"b=" + body.hex().encode()) for target, body in requests]
    if pipelined:
        parts = [b"".join(parts)]

    async def scenario() -> bytes:
        async with Served(answer_body) as served:
            return await served.exchange(*parts, responses=len(requests), pause=0.01)

    answers = split_responses(run(scenario()))
    assert [re.findall(rb"x-path: ([^\r]*)", head) for head, _ in answers] == [
        [target.split(b"?")[0]] for target, _ in requests
    ]
    assert [body for _, body in answers] == [
        b"b=" + body.hex().encode() + b"|" for _, body in requests
    ]


def test_the_500_carries_the_servers_default_headers() -> None:
    async def scenario() -> bytes:
        async with Served(fails_after_the_head) as served:
            served.state.default_headers = [(b"server", b"keyledger-test"), (b"date", b"D")]
            return await served.exchange(post(), responses=2)

    arrived = run(scenario())
    assert arrived.startswith(b"HTTP/1.1 500 Internal Server Error\r\n")
    assert b"server: keyledger-test\r\n" in arrived
    assert b"date: D\r\n" in arrived


def declaring(*lengths: bytes) -> App:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()
        headers = [(b"content-length", length) for length in lengths]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"{}"})

    return app


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
@pytest.mark.parametrize("length", [b"+2", b" 2", b"0x2", b"2 ", b"1_0"])
def test_a_declared_length_that_is_not_plain_digits_is_a_500(length: bytes) -> None:
    _, arrived = run(_serve(declaring(length), post(), responses=2))
    assert arrived.startswith(b"HTTP/1.1 500 Internal Server Error\r\n")
    assert arrived.count(b"HTTP/1.1") == 1


def test_a_length_declared_twice_leaves_as_one() -> None:
    _, arrived = run(_serve(declaring(b"2", b"2"), post()))
    [(head, body)] = split_responses(arrived)
    assert head.lower().count(b"content-length") == 1
    assert body == b"{}"


def refusing_the_first() -> App:
    """A 413 to the connection's first request before reading its body; echoes the rest."""
    calls: list[int] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        calls.append(1)
        if len(calls) > 1:
            await answer_body(scope, receive, send)
            return
        body = b'{"error":"invalid_request"}'
        headers = [(b"content-length", b"%d" % len(body))]
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    return app


CHUNKED = (
    b"POST /oauth2/token HTTP/1.1\r\nhost: t\r\ntransfer-encoding: chunked\r\n\r\n"
    b"3\r\na=1\r\n4\r\n&b=2\r\n0\r\n\r\n"
)


@pytest.mark.parametrize("first", [post(body=b"a=1&b=2"), CHUNKED], ids=["length", "chunked"])
def test_an_answer_before_the_body_is_read_keeps_the_connection_in_step(first: bytes) -> None:
    _, arrived = run(
        _serve(refusing_the_first(), first, post(body=b"a=9"), responses=2, pause=0.05)
    )
    answers = split_responses(arrived)
    assert [head.split(b" ")[1] for head, _ in answers] == [b"413", b"200"]
    assert answers[1][1] == b"a=9|"


def test_a_request_target_split_across_reads_is_still_recognised() -> None:
    served, arrived = run(
        _serve(
            answer_body,
            b"POST /oau",
            b"th2/token HTTP/1.1\r\nhost: t\r\ncontent-length: 3\r\n\r\na=1",
            pause=0.05,
        )
    )
    assert served.cycles == [WholeResponseCycle]
    assert [body for _, body in split_responses(arrived)] == [b"a=1|"]


def test_a_chunked_bodys_trailer_fields_never_become_request_headers() -> None:
    seen: list[list[tuple[bytes, bytes]]] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        while (await receive())["more_body"]:
            pass
        seen.append(list(scope["headers"]))
        await answer_body_of(b"", scope, send)

    request = (
        b"POST /oauth2/token HTTP/1.1\r\nhost: t\r\ntransfer-encoding: chunked\r\n\r\n"
        b"3\r\na=1\r\n0\r\nx-forwarded-for: 203.0.113.9\r\n\r\n"
    )
    run(_serve(app, request))
    [headers] = seen
    assert b"x-forwarded-for" not in [name for name, _ in headers]
