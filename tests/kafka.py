"""Reading the audit topic back from a real Kafka-protocol broker (the embedded tansu)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer
from aiokafka.errors import KafkaConnectionError


@dataclass(frozen=True)
class Record:
    key: str
    message: dict[str, Any]
    partition: int
    offset: int
    headers: dict[str, bytes] = field(default_factory=dict)

    @property
    def type(self) -> str:
        return str(self.message["type"])


async def consume(
    bootstrap: str,
    topic: str,
    done: Callable[[list[Record]], bool],
    within: float = 30.0,
    **security: Any,
) -> list[Record]:
    """Every record of the topic from the start until `done(records)` holds (or the timeout).

    No consumer group: every partition, read from the beginning, as an auditor replaying the
    topic would; a topic that does not exist yet is waited for, and so is a broker just
    started that drops its first connections. `security`: aiokafka's TLS and SASL arguments
    (`KafkaSecurity.client_kwargs()`).
    """
    deadline = time.monotonic() + within
    consumer = await started_consumer(topic, bootstrap, deadline, **security)
    records: list[Record] = []
    try:
        while not done(records) and time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=200)
            for tp, messages in batches.items():
                records.extend(
                    Record(
                        m.key.decode(),
                        json.loads(m.value),
                        tp.partition,
                        m.offset,
                        dict(m.headers or ()),
                    )
                    for m in messages
                )
    finally:
        await consumer.stop()
    return records


async def started_consumer(
    topic: str, bootstrap: str, deadline: float, **security: Any
) -> AIOKafkaConsumer:
    """A consumer that has bootstrapped, retried until `deadline` while the broker refuses."""
    while True:
        consumer = AIOKafkaConsumer(
            topic,
            bootstrap_servers=bootstrap,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            metadata_max_age_ms=500,
            **security,
        )
        try:
            await consumer.start()
            return consumer
        except KafkaConnectionError:
            await consumer.stop()
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)


def count_at_least(n: int) -> Callable[[list[Record]], bool]:
    return lambda records: len(records) >= n


def distinct_ids(records: list[Record]) -> set[str]:
    return {r.message["id"] for r in records}


def in_order_per_key(records: list[Record]) -> bool:
    """Each key's first sightings of stored events come in increasing `sequence` order."""
    seen: set[str] = set()
    last: dict[str, int] = {}
    for record in sorted(records, key=lambda r: (r.partition, r.offset)):
        if "sequence" not in record.message or record.message["id"] in seen:
            continue
        seen.add(record.message["id"])
        sequence = int(record.message["sequence"])
        if sequence <= last.get(record.key, 0):
            return False
        last[record.key] = sequence
    return True
