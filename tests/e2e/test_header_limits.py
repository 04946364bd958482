"""Request heads are bounded at the HTTP server, before the app sees them (raw sockets)."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.server import KEYLEDGER, environment, free_port, stop

MiB = 1024 * 1024


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, int]]:
    """`keyledger serve` with the default limits: (its port, its pid)."""
    tmp = tmp_path_factory.mktemp("limits")
    port = free_port()
    env = environment(f"sqlite:///{tmp}/k.db", tmp / "keys", port)
    with (tmp / "serve.log").open("wb") as out:
        proc = subprocess.Popen([KEYLEDGER, "serve"], env=env, stdout=out, stderr=out)
        try:
            deadline = time.monotonic() + 30
            while True:
                assert proc.poll() is None, (tmp / "serve.log").read_text()
                with contextlib.suppress(httpx.HTTPError):
                    if httpx.get(f"http://127.0.0.1:{port}/readyz").status_code == 200:
                        break
                assert time.monotonic() < deadline, (tmp / "serve.log").read_text()
                time.sleep(0.1)
            yield port, proc.pid
        finally:
            stop(proc)


def exchange(port: int, request: bytes) -> bytes:
    """Send `request` on a fresh connection; everything the server answered before closing.

    A server that closes while the request is still arriving may reset the connection: then
    whatever arrived, possibly nothing.
    """
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        with contextlib.suppress(OSError):
            s.sendall(request)
        answer = b""
        with contextlib.suppress(OSError):
            while chunk := s.recv(65536):  # every answer here closes the connection
                answer += chunk
        return answer


def get(headers: bytes = b"", connection: bytes = b"close") -> bytes:
    return (
        b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        + headers
        + b"Connection: "
        + connection
        + b"\r\n\r\n"
    )


def status(answer: bytes) -> int | None:
    return int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/1.1 ") else None


def test_a_normal_request_and_one_with_8_kib_of_headers_are_answered(
    server: tuple[int, int],
) -> None:
    port, _ = server
    assert status(exchange(port, get())) == 200
    cookies = b"".join(b"X-Filler-%d: %s\r\n" % (i, b"v" * 1000) for i in range(8))
    assert status(exchange(port, get(cookies))) == 200


def test_a_header_of_one_mebibyte_is_refused_with_431_or_a_closed_connection(
    server: tuple[int, int],
) -> None:
    port, _ = server
    answer = exchange(port, get(b"X-Big: " + b"a" * MiB + b"\r\n"))
    assert status(answer) in (431, None)
    assert b"200 OK" not in answer


def test_headers_over_the_byte_limit_in_one_read_get_431(server: tuple[int, int]) -> None:
    port, _ = server
    answer = exchange(port, get(b"X-Big: " + b"a" * 20_000 + b"\r\n"))
    assert status(answer) == 431
    assert b"request header fields too large" in answer
    assert b"connection: close" in answer.lower()


def test_a_long_request_target_counts_as_head(server: tuple[int, int]) -> None:
    port, _ = server
    target = b"/healthz?" + b"q" * 40_000
    answer = exchange(port, b"GET " + target + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    assert status(answer) in (431, None)


def test_more_than_100_headers_get_431(server: tuple[int, int]) -> None:
    port, _ = server
    many = b"".join(b"X-H%d: 1\r\n" % i for i in range(120))
    assert status(exchange(port, get(many))) == 431
    few = b"".join(b"X-H%d: 1\r\n" % i for i in range(90))
    assert status(exchange(port, get(few))) == 200


def test_limits_apply_per_request_on_a_kept_alive_connection(server: tuple[int, int]) -> None:
    port, _ = server
    headers = b"X-Filler: " + b"v" * 10_000 + b"\r\n"
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        for _ in range(3):  # 30 KB of headers over the connection, 10 KB per request
            s.sendall(get(headers, connection=b"keep-alive"))
            answer = b""
            while b"\r\n\r\n" not in answer or not answer.endswith(b"}"):
                answer += s.recv(65536)
            assert status(answer) == 200


def rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def stream_header(port: int, total: int, sent: list[int]) -> None:
    """Send one endless header, 64 KiB at a time, until `total` bytes or the server closes."""
    chunk = b"a" * 65536
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port)) as s:
        s.settimeout(10)
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ")
        while sent[0] < total:
            s.sendall(chunk)
            sent[0] += len(chunk)


def test_eight_connections_streaming_64_mib_headers_do_not_grow_the_server(
    server: tuple[int, int],
) -> None:
    port, pid = server
    before = rss(pid)
    counts = [[0] for _ in range(8)]
    threads = [threading.Thread(target=stream_header, args=(port, 64 * MiB, c)) for c in counts]
    peak = before
    for t in threads:
        t.start()
    while any(t.is_alive() for t in threads):
        peak = max(peak, rss(pid))
        time.sleep(0.01)
    # Each connection is cut off after the limit plus one read, long before 64 MiB.
    assert all(c[0] < 16 * MiB for c in counts), counts
    assert peak - before < 32 * MiB, (before, peak)
    assert status(exchange(port, get())) == 200
