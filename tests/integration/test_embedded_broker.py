"""The embedded broker as `make run` starts it: tansu behind the compatibility proxy."""

from __future__ import annotations

import socket
import struct

from adapters.kafka import EmbeddedBroker, port_open
from adapters.kafka_compat_proxy import without_top_level_tags
from tests.conftest import free_port

# An ApiVersions v3 response tail as tansu sends it: throttle time, then four tagged fields.
TAIL_FROM_TANSU = bytes.fromhex(
    "00000000" + "04" + "000101" + "0108ffffffffffffffff" + "020101" + "030100"
)


def api_versions_v3(bootstrap: str) -> bytes:
    """The raw ApiVersions v3 response (after the size), as librdkafka asks for it."""
    host, port = bootstrap.split(":")
    header = struct.pack(">hhih", 18, 3, 7, 4) + b"kcat" + b"\x00"
    body = b"\x0blibrdkafka" + b"\x062.0.2" + b"\x00"
    with socket.create_connection((host, int(port)), timeout=5) as conn:
        conn.sendall(struct.pack(">i", len(header + body)) + header + body)
        (size,) = struct.unpack(">i", conn.recv(4, socket.MSG_WAITALL))
        return conn.recv(size, socket.MSG_WAITALL)


def test_api_versions_reach_clients_without_top_level_tagged_fields(
    broker: EmbeddedBroker,
) -> None:
    response = api_versions_v3(broker.bootstrap)
    assert response[:4] == struct.pack(">i", 7)
    assert response[4:6] == b"\x00\x00"  # no error
    entries = response[6] - 1
    assert entries > 10  # the broker's API table passed through untouched
    assert response[-5:] == b"\x00\x00\x00\x00\x00"  # throttle time, then zero tagged fields


def test_only_the_top_level_tags_are_dropped() -> None:
    one_api = b"\x00\x12" + b"\x00\x00" + b"\x00\x03" + b"\x00"  # ApiVersions 0..3, no tags
    response = struct.pack(">i", 7) + b"\x00\x00" + b"\x02" + one_api + TAIL_FROM_TANSU
    fixed = without_top_level_tags(response)
    assert fixed == struct.pack(">i", 7) + b"\x00\x00" + b"\x02" + one_api + b"\x00" * 5


def test_stopping_the_broker_frees_its_port() -> None:
    port = free_port()
    with EmbeddedBroker("127.0.0.1", port):
        assert port_open("127.0.0.1", port)
    assert not port_open("127.0.0.1", port)
