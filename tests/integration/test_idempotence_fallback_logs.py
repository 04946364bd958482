"""The embedded broker refuses the idempotent producer (issue 18): with `auto` that is expected,
so keyledger's fallback says so in one warning and aiokafka's own error record about the
refusal is dropped; with `on` the refusal is an error and stays one."""

from __future__ import annotations

import logging

import pytest
from aiokafka.errors import KafkaError

from adapters.kafka import EmbeddedBroker, KafkaConfig, start_producer

AIOKAFKA_REFUSAL = "Unexpected error during InitProducerIdRequest"


async def test_with_auto_the_refusal_is_one_warning_and_no_error(
    broker: EmbeddedBroker, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    producer = await start_producer(KafkaConfig(broker.bootstrap, idempotence="auto"))
    await producer.stop()
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert [w for w in warnings if "refused the idempotent producer" in w] == [
        f"the broker at {broker.bootstrap} refused the idempotent producer (UnknownError); "
        "producing without it"
    ]


async def test_with_on_the_refusal_stays_aiokafkas_error_and_fails_the_start(
    broker: EmbeddedBroker, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    with pytest.raises(KafkaError):
        await start_producer(KafkaConfig(broker.bootstrap, idempotence="on"))
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert [r.name for r in errors if r.getMessage().startswith(AIOKAFKA_REFUSAL)] == [
        "aiokafka.producer.sender"
    ]


async def test_after_a_fallback_aiokafkas_other_errors_still_reach_the_log(
    broker: EmbeddedBroker, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    await (await start_producer(KafkaConfig(broker.bootstrap, idempotence="auto"))).stop()
    logging.getLogger("aiokafka.producer.sender").error("%s: %s", AIOKAFKA_REFUSAL, "elsewhere")
    assert [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR] == [
        f"{AIOKAFKA_REFUSAL}: elsewhere"
    ]
