"""A Kafka-protocol pass-through in front of the embedded broker, for librdkafka 2.0 clients.

Debian's kcat (librdkafka 2.0.2) cannot parse the top-level tagged fields that tansu puts in
every ApiVersions v3 response (SupportedFeatures, FinalizedFeaturesEpoch, FinalizedFeatures,
ZkMigrationReady: "Protocol read buffer underflow for ApiVersion v3"), so it never gets past
the handshake. Apache Kafka leaves those fields out when they hold nothing, and so does this
proxy: it forwards every frame unchanged except ApiVersions (v3+) responses, whose top-level
tagged fields it drops. The embedded broker advertises the proxy's address, so every client,
keyledger's own producers included, talks through it.

Run as `python -m adapters.kafka_compat_proxy LISTEN_PORT UPSTREAM_PORT` (loopback only).
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
import sys

API_VERSIONS = 18
FIRST_FLEXIBLE_API_VERSIONS = 3


def _uvarint(data: bytes, at: int) -> tuple[int, int]:
    """The unsigned varint at `at`, and the offset after it."""
    value = shift = 0
    while True:
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, at
        shift += 7


def _skip_tags(data: bytes, at: int) -> int:
    count, at = _uvarint(data, at)
    for _ in range(count):
        _, at = _uvarint(data, at)
        size, at = _uvarint(data, at)
        at += size
    return at


def without_top_level_tags(response: bytes) -> bytes:
    """An ApiVersions v3+ response (correlation id first) with its top-level tags emptied."""
    at = 4 + 2  # correlation id, error code
    entries, at = _uvarint(response, at)
    for _ in range(max(0, entries - 1)):
        at = _skip_tags(response, at + 6)  # api key, min and max version, then tags
    at += 4  # throttle time
    return response[:at] + b"\x00"


async def _read_frame(reader: asyncio.StreamReader) -> bytes:
    (size,) = struct.unpack(">i", await reader.readexactly(4))
    return await reader.readexactly(size)


def _frame(payload: bytes) -> bytes:
    return struct.pack(">i", len(payload)) + payload


async def _pipe(
    client: tuple[asyncio.StreamReader, asyncio.StreamWriter], upstream_port: int
) -> None:
    reader, writer = client
    up_reader, up_writer = await asyncio.open_connection("127.0.0.1", upstream_port)
    fix: set[int] = set()

    async def requests() -> None:
        while True:
            frame = await _read_frame(reader)
            api_key, api_version, correlation = struct.unpack(">hhi", frame[:8])
            if api_key == API_VERSIONS and api_version >= FIRST_FLEXIBLE_API_VERSIONS:
                fix.add(correlation)
            up_writer.write(_frame(frame))
            await up_writer.drain()

    async def responses() -> None:
        while True:
            frame = await _read_frame(up_reader)
            (correlation,) = struct.unpack(">i", frame[:4])
            if correlation in fix:
                fix.discard(correlation)
                frame = without_top_level_tags(frame)
            writer.write(_frame(frame))
            await writer.drain()

    tasks = [asyncio.create_task(requests()), asyncio.create_task(responses())]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        for w in (writer, up_writer):
            with contextlib.suppress(Exception):
                w.close()


async def serve(listen_port: int, upstream_port: int) -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(Exception):
            await _pipe((reader, writer), upstream_port)

    server = await asyncio.start_server(handle, "127.0.0.1", listen_port)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    listen, upstream = (int(a) for a in sys.argv[1:3])
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(listen, upstream))
