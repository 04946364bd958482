"""`make bench`: detector throughput on a pre-filled audit topic (issue 6, part 7).

Fills a topic on the embedded broker with 200,000 audit messages as the relay and the
observation buffer write them (tokens issued from a few networks, failed authentications,
rejected requests, across 500 clients), then runs the detector (a consumer group member
storing its state, offsets and alerts in a fresh PostgreSQL database every second and with
every alert) and reports messages/s from its first batch to the last message.
"""

from __future__ import annotations

import asyncio
import random
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec

from adapters.alert_store import AlertStore
from adapters.kafka import EmbeddedBroker, KafkaConfig, ensure_topic, start_producer
from bench.common import arguments, fresh_database
from domain.anomaly_detection import Thresholds
from projections.alert_format import alert_message
from projections.detector_service import DetectorConfig, DetectorService
from tests.e2e.server import free_port

T0 = datetime(2026, 11, 20, tzinfo=UTC)


def message(i: int, rng: random.Random) -> tuple[bytes, dict[str, Any]]:
    client = f"client-{rng.randrange(500)}"
    at = (T0 + timedelta(milliseconds=20 * i)).isoformat()  # 200k messages over ~67 minutes
    ip = f"10.{rng.randrange(4)}.{rng.randrange(8)}.{rng.randrange(250)}"
    roll = rng.random()
    base = {"specversion": "1.0", "id": str(uuid.uuid4()), "source": "https://auth.example"}
    if roll < 0.85:
        body = {
            **base,
            "type": "keyledger.token.issued.v1",
            "subject": client,
            "time": at,
            "sequence": str(i),
            "data": {"client_id": client, "source_ip": ip, "scopes": ["a"], "jti": str(i)},
        }
    elif roll < 0.97:
        body = {
            **base,
            "type": "keyledger.security.authentication_failed.v1",
            "subject": client,
            "time": at,
            "data": {"client_id": client, "source_ip": ip, "reason": "wrong_secret"},
        }
    else:
        body = {
            **base,
            "type": "keyledger.security.token_request_rejected.v1",
            "subject": client,
            "time": at,
            "data": {"client_id": client, "source_ip": ip, "error": "invalid_scope"},
        }
    return client.encode(), body


async def fill(bootstrap: str, topic: str, count: int) -> None:
    config = KafkaConfig(bootstrap, idempotence="off")
    await ensure_topic(config, topic, 6, 1)
    producer = await start_producer(config)
    rng = random.Random(7)
    try:
        deliveries = []
        for i in range(count):
            key, body = message(i, rng)
            deliveries.append(await producer.send(topic, msgspec.json.encode(body), key))
            if len(deliveries) >= 5000:
                await asyncio.gather(*deliveries)
                deliveries = []
        await asyncio.gather(*deliveries)
    finally:
        await producer.stop()


async def detect(bootstrap: str, topic: str, dsn: str, count: int) -> tuple[float, int]:
    config = KafkaConfig(bootstrap, idempotence="off")
    service = DetectorService(
        DetectorConfig(
            bootstrap=bootstrap,
            audit_topic=topic,
            alerts_topic=f"{topic}-alerts",
            group=f"bench-{uuid.uuid4().hex[:6]}",
            thresholds=Thresholds(),
            session_timeout_ms=2000,
        ),
        AlertStore(dsn),
        lambda: start_producer(config),
        lambda alert: alert_message(alert, "https://auth.example"),
    )
    task = asyncio.create_task(service.run())
    first = None
    try:
        while service.consumed < count:
            if first is None and service.consumed > 0:
                first = (time.monotonic(), service.consumed)
            await asyncio.sleep(0.005)
        done = time.monotonic()
    finally:
        service.stop()
        await task
    assert first is not None
    return (count - first[1]) / (done - first[0]), service.raised


def main() -> int:
    parser = arguments(__doc__)
    parser.add_argument("--messages", type=int, default=200_000)
    args = parser.parse_args()
    topic = f"bench-audit-{uuid.uuid4().hex[:6]}"
    with EmbeddedBroker("127.0.0.1", free_port()) as broker, fresh_database(args.pg) as dsn:
        started = time.monotonic()
        asyncio.run(fill(broker.bootstrap, topic, args.messages))
        print(f"filled {args.messages} messages in {time.monotonic() - started:.1f} s", flush=True)
        rate, alerts = asyncio.run(detect(broker.bootstrap, topic, dsn, args.messages))
    print(
        f"\ndetector: {args.messages} audit messages, 500 clients, state and offsets stored in "
        f"PostgreSQL every second and with every alert: {rate:,.0f} messages/s, {alerts} alerts"
    )
    if rate < 20_000:
        print("WARNING: under the 20,000 messages/s target", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
