"""keyledger's Kafka clients over TLS, against a listener that enforces it.

The embedded broker (tansu) cannot serve TLS itself (its `--cert` and `--key` options exclude
each other), so each test puts Debian's stunnel in front of it, with a CA and certificates
made for the test, and has the broker advertise stunnel's address: after bootstrap every
client connects where the metadata says, so every byte goes through TLS.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from adapters.clock import FixedClock
from adapters.kafka_security import KafkaTlsError
from api.bootstrap import build_detector, topic_producer
from api.settings import Settings
from projections.audit_format import audit_event_id
from tests.integration.helpers import basic, register, running
from tests.integration.test_admin_api import START
from tests.kafka import consume, distinct_ids
from tests.kafka_tls import TestCA, TlsBroker, tls_broker


@pytest.fixture
def tls(tmp_path: Path) -> Iterator[TlsBroker]:
    with tls_broker(tmp_path / "tls") as broker:
        yield broker


def secured(tmp_path: Path, broker: TlsBroker, **changes: Any) -> Settings:
    """Settings publishing through `broker`'s TLS listener, validated like the environment's."""
    values: dict[str, Any] = {
        "database_url": f"sqlite:///{tmp_path}/keyledger.db",
        "keys_dir": tmp_path / "keys",
        "issuer": "https://auth.example.test",
        "follow_interval": 0.02,
        "kafka_bootstrap": broker.bootstrap,
        "kafka_security_protocol": "SSL",
        "kafka_ssl_cafile": str(broker.ca.cafile),
        "audit_topic": f"audit-{uuid.uuid4().hex[:12]}",
        "alerts_topic": f"alerts-{uuid.uuid4().hex[:8]}",
        "detect_group": f"detector-{uuid.uuid4().hex[:8]}",
        "detect_session_timeout_ms": 2000,
        "relay_backoff_max": 0.5,
    }
    settings = Settings(**{**values, **changes})
    settings.validate()
    return settings


async def until(condition: Any, within: float = 20.0) -> None:
    async with asyncio.timeout(within):
        while not condition():  # noqa: ASYNC110 - other tasks make it true
            await asyncio.sleep(0.05)


async def publish_one(settings: Settings) -> None:
    producer = await topic_producer(settings, settings.audit_topic)
    try:
        await producer.send_and_wait(settings.audit_topic, b'{"id": "x"}', b"k")
    finally:
        await producer.stop()


async def test_the_relay_publishes_the_audit_topic_through_tls_with_the_host_name_checked(
    tmp_path: Path, tls: TlsBroker
) -> None:
    settings = secured(tmp_path, tls)
    assert settings.kafka_security.ssl_context().check_hostname
    async with running(settings) as (_, runtime):
        created = await register(runtime)
        expected = {
            audit_event_id(runtime.ledger.mapper.to_domain_event(n))
            for n in runtime.ledger.read(0, 1000)
        }
        await until(lambda: runtime.relay is not None and runtime.relay.position >= len(expected))
    records = await consume(
        settings.kafka_address,
        settings.audit_topic,
        lambda rs: expected <= distinct_ids(rs),
        **settings.kafka_security.client_kwargs(),
    )
    assert expected <= distinct_ids(records)
    assert created.client_id in {r.key for r in records}


async def test_a_broker_certificate_from_another_ca_is_refused_with_a_clear_error(
    tmp_path: Path, tls: TlsBroker
) -> None:
    stranger = TestCA(tmp_path / "other", "another CA")
    settings = secured(tmp_path, tls, kafka_ssl_cafile=str(stranger.cafile))
    with pytest.raises(KafkaTlsError) as refused:
        await publish_one(settings)
    assert str(refused.value) == (
        f"TLS to the broker at {tls.bootstrap} failed: its certificate was not accepted "
        "(unable to get local issuer certificate); check the CA file and the broker's host name"
    )


async def test_a_certificate_for_another_host_is_refused_unless_the_host_name_check_is_off(
    tmp_path: Path,
) -> None:
    with tls_broker(tmp_path / "tls", hosts=("kafka.internal",)) as broker:
        with pytest.raises(KafkaTlsError, match="mismatch, certificate is not valid for"):
            await publish_one(secured(tmp_path, broker))
        unchecked = secured(tmp_path, broker, kafka_ssl_check_hostname=False)
        await publish_one(unchecked)  # the CA still vouches for it
        records = await consume(
            unchecked.kafka_address,
            unchecked.audit_topic,
            lambda rs: len(rs) >= 1,
            **unchecked.kafka_security.client_kwargs(),
        )
    assert [r.key for r in records] == ["k"]


async def test_a_broker_requiring_client_certificates_takes_keyledgers_and_refuses_none(
    tmp_path: Path,
) -> None:
    with tls_broker(tmp_path / "tls", mutual=True) as broker:
        client = broker.ca.issue("keyledger-client", client=True)
        with pytest.raises(KafkaTlsError, match=r"certificate required|client certificate"):
            await publish_one(secured(tmp_path, broker))
        settings = secured(
            tmp_path,
            broker,
            kafka_ssl_certfile=str(client.cert),
            kafka_ssl_keyfile=str(client.key),
        )
        await publish_one(settings)
        records = await consume(
            settings.kafka_address,
            settings.audit_topic,
            lambda rs: len(rs) >= 1,
            **settings.kafka_security.client_kwargs(),
        )
    assert [r.key for r in records] == ["k"]


async def test_a_plaintext_client_at_the_tls_listener_is_told_it_may_need_tls(
    tmp_path: Path, tls: TlsBroker
) -> None:
    settings = secured(tmp_path, tls, kafka_security_protocol="PLAINTEXT", kafka_ssl_cafile=None)
    with pytest.raises(KafkaTlsError, match=r"does its listener require TLS \(SSL or SASL_SSL\)"):
        await publish_one(settings)


async def test_the_detector_consumes_the_audit_topic_and_raises_alerts_through_tls(
    tmp_path: Path, tls: TlsBroker
) -> None:
    settings = secured(tmp_path, tls)
    async with running(settings, FixedClock(START)) as (http, runtime):
        target = await register(runtime)
        detector = build_detector(settings, runtime.ledger)
        task = asyncio.create_task(detector.run())
        try:
            for _ in range(25):
                response = await http.post(
                    "/oauth2/token",
                    data={"grant_type": "client_credentials"},
                    headers=basic(target.client_id, "kl_secret_guess"),
                )
                assert response.status_code in (401, 429)
            await until(lambda: detector.raised >= 1)
        finally:
            detector.stop()
            await task
    records = await consume(
        settings.kafka_address,
        settings.alerts_topic,
        lambda rs: len(rs) >= 1,
        **settings.kafka_security.client_kwargs(),
    )
    assert [(r.message["data"]["rule"], r.key) for r in records] == [
        ("brute_force", target.client_id)
    ]
