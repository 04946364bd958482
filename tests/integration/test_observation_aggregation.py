"""Failed requests reach the audit topic counted, not one message each (real broker)."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from adapters.client_secrets import SECRET_PREFIX
from adapters.kafka import EmbeddedBroker
from adapters.observation_buffer import ObservationBuffer
from api.settings import Settings
from domain.oauth_errors import InvalidClient
from domain.observations import SecurityObservation
from domain.redaction import REDACTED
from projections.audit_format import security_message
from tests.integration.helpers import FORM, basic, register, running
from tests.kafka import Record, consume

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"


@pytest.fixture
def kafka_settings(sqlite_url: str, tmp_path: Path, broker: EmbeddedBroker) -> Settings:
    return Settings(
        database_url=sqlite_url,
        keys_dir=tmp_path / "keys",
        issuer="https://auth.example.test",
        follow_interval=0.02,
        kafka_bootstrap=broker.bootstrap,
        audit_topic=f"audit-{uuid.uuid4().hex[:12]}",
        relay_backoff_max=0.5,
        abuse_failure_burst=0,  # no throttle: every request is a plain failure
    )


def failures(records: list[Record]) -> list[dict[str, Any]]:
    return [r.message for r in records if r.type.startswith("keyledger.security.")]


def counted(n: int) -> Any:
    return lambda rs: sum(m["data"]["count"] for m in failures(rs)) >= n


async def test_fifty_failed_requests_from_one_source_are_one_message_per_second(
    kafka_settings: Settings,
) -> None:
    async with running(kafka_settings) as (client, runtime):
        created = await register(runtime)
        await asyncio.sleep(1 - time.time() % 1)  # start in a fresh second
        for _ in range(50):
            response = await client.post(
                "/oauth2/token",
                data={"grant_type": "client_credentials"},
                headers=basic(created.client_id, "kl_secret_guess"),
            )
            assert response.status_code == 401
        records = await consume(
            kafka_settings.kafka_address, kafka_settings.audit_topic, counted(50)
        )
    messages = failures(records)
    assert sum(m["data"]["count"] for m in messages) == 50
    assert len(messages) <= 2  # one per second the requests spanned
    schema = json.loads((SCHEMAS / "keyledger.security.authentication_failed.v1.json").read_text())
    for message in messages:
        jsonschema.validate(
            message, schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
        )
        assert message["data"]["client_id"] == created.client_id
        assert message["data"]["reason"] == "wrong_secret"
        assert message["time"] == message["data"]["first_seen"] <= message["data"]["last_seen"]


async def test_a_secret_sent_as_the_client_id_is_never_published(
    kafka_settings: Settings,
) -> None:
    async with running(kafka_settings) as (client, runtime):
        created = await register(runtime)
        cid, secret = created.client_id, created.client_secret
        swapped = [
            {"headers": basic(secret, cid)},
            {"data_extra": {"client_id": secret, "client_secret": cid}, "headers": FORM},
            {"headers": {**basic(cid, "kl_secret_guess"), "User-Agent": f"x {secret}"}},
        ]
        for attempt in swapped:
            response = await client.post(
                "/oauth2/token",
                data={"grant_type": "client_credentials", **attempt.get("data_extra", {})},
                headers=attempt["headers"],
            )
            assert response.status_code == 401
            assert secret not in response.text
        records = await consume(
            kafka_settings.kafka_address, kafka_settings.audit_topic, counted(3)
        )
    hidden = secret.removeprefix(SECRET_PREFIX)
    for record in records:
        assert hidden not in record.key
        assert hidden not in json.dumps(record.message)
    subjects = {m.get("subject") for m in failures(records)}
    assert subjects == {REDACTED, cid}
    assert REDACTED in {r.key for r in records}


def observation(ip: str) -> SecurityObservation:
    observed = SecurityObservation.of_error(
        InvalidClient(reason="unknown_client"),
        endpoint="/oauth2/token",
        at=datetime.now(UTC),
        client_id="c1",
        auth_method=None,
        source_ip=ip,
        user_agent=None,
    )
    assert observed is not None
    return observed


async def test_a_full_buffer_drops_and_counts_distinct_sources_and_never_blocks() -> None:
    async def nowhere() -> Any:
        raise ConnectionError("no broker")

    buffer = ObservationBuffer(
        nowhere,
        encode=lambda o: security_message(o, "https://a.test"),
        topic="t",
        capacity=5,
        backoff_max=0.2,
    )
    publishing = asyncio.create_task(buffer.run())
    try:
        await asyncio.sleep(0.05)
        started = time.perf_counter()
        for i in range(100):
            buffer.record(observation(f"198.51.100.{i}"))
        for _ in range(100):  # the same sources again are counted where they are held
            buffer.record(observation("198.51.100.99"))
        assert time.perf_counter() - started < 0.5
    finally:
        publishing.cancel()
        await asyncio.gather(publishing, return_exceptions=True)
    assert buffer.recorded == 200
    # Held at most: one batch in the publisher, the buffer, the tally (5 each).
    assert buffer.dropped >= 100 - 15
    assert buffer.published == 0


async def test_the_end_of_a_window_publishes_what_was_counted_in_it() -> None:
    sent: list[tuple[bytes, bytes]] = []

    class Producer:
        async def send(self, topic: str, value: bytes, key: bytes, *, headers: Any = None) -> Any:
            sent.append((key, value))
            done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            done.set_result(None)
            return done

        async def stop(self) -> None:
            return None

    async def producer() -> Producer:
        return Producer()

    buffer = ObservationBuffer(
        producer, encode=lambda o: security_message(o, "https://a.test"), topic="t"
    )
    publishing = asyncio.create_task(buffer.run())
    try:
        one = observation("192.0.2.1")
        for _ in range(30):
            buffer.record(one)
        async with asyncio.timeout(3):
            while not sent:  # noqa: ASYNC110 - the window closes on the wall clock
                await asyncio.sleep(0.02)
    finally:
        publishing.cancel()
        await asyncio.gather(publishing, return_exceptions=True)
    assert len(sent) == 1
    key, value = sent[0]
    assert key == b"c1"
    assert json.loads(value)["data"]["count"] == 30
