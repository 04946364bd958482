"""DESIGN.md invariant 5 over random histories and random faults: every committed event
reaches the audit topic, identified by its event id, in commit order per client.

The broker is real (tansu); the faults are injected around the real producer and store:
a send that fails mid-batch, and a crash between the broker's acknowledgement and the
position being stored (which makes the relay publish that batch again).
"""

from __future__ import annotations

import asyncio
import tempfile
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiokafka.errors import KafkaConnectionError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.event_store import Ledger
from adapters.kafka import EmbeddedBroker, KafkaConfig, ensure_topic, start_producer
from adapters.relay_store import RelayStore, relay_store
from domain.event_ids import event_id
from domain.token import IssuedToken
from projections.audit_format import audit_event_id
from projections.audit_relay import AuditRelay, RelayConfig
from tests.backlog import issued_event
from tests.kafka import consume, distinct_ids, in_order_per_key

NOW = datetime(2026, 11, 20, tzinfo=UTC)


class FlakyProducer:
    """The real producer, except that the sends numbered in `failures` raise (a record
    batch's for one partition: the relay's others of the same batch may have gone)."""

    def __init__(self, real: Any, counter: list[int], failures: frozenset[int]) -> None:
        self._real, self._counter, self._failures = real, counter, failures

    def _count(self) -> None:
        self._counter[0] += 1
        if self._counter[0] in self._failures:
            raise KafkaConnectionError("injected: the broker went away mid-batch")

    async def send(self, topic: str, value: bytes, key: bytes, *, headers: Any = None) -> Any:
        self._count()
        return await self._real.send(topic, value, key)

    async def partitions_for(self, topic: str) -> set[int]:
        partitions: set[int] = await self._real.partitions_for(topic)
        return partitions

    def create_batch(self) -> Any:
        return self._real.create_batch()

    async def send_batch(self, batch: Any, topic: str, *, partition: int) -> Any:
        self._count()
        return await self._real.send_batch(batch, topic, partition=partition)

    async def stop(self) -> None:
        await self._real.stop()


class CrashingStore:
    """The real store, except that the position writes numbered in `crashes` fail."""

    def __init__(self, real: RelayStore, crashes: frozenset[int]) -> None:
        self._real, self._crashes, self._writes = real, crashes, 0

    def acquire(self) -> bool:
        return self._real.acquire()

    def release(self) -> None:
        self._real.release()

    def position(self) -> int:
        return self._real.position()

    def read(self, after: int, limit: int) -> Sequence[Any]:
        return self._real.read(after, limit)

    def advance(self, old: int, new: int) -> None:
        self._writes += 1
        if self._writes in self._crashes:
            raise OSError("injected: the relay died before storing its position")
        self._real.advance(old, new)


def token(client: int) -> IssuedToken.Issued:
    return issued_event(f"client-{client}", NOW)


histories = st.lists(
    st.lists(st.integers(0, 3), min_size=1, max_size=30), min_size=1, max_size=6
)  # commits, each a batch of tokens for clients 0..3
failures = st.frozensets(st.integers(1, 40), max_size=6)
crashes = st.frozensets(st.integers(1, 12), max_size=3)


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(history=histories, failing_sends=failures, crashing_writes=crashes, batch=st.integers(1, 40))
def test_every_committed_event_arrives_in_order_per_client_despite_faults(
    broker: EmbeddedBroker,
    history: list[list[int]],
    failing_sends: frozenset[int],
    crashing_writes: frozenset[int],
    batch: int,
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        ledger = Ledger(f"sqlite:///{Path(tmp) / 'k.db'}")
        try:
            asyncio.run(_relay(ledger, broker, history, failing_sends, crashing_writes, batch))
        finally:
            ledger.close()


async def _relay(
    ledger: Ledger,
    broker: EmbeddedBroker,
    history: list[list[int]],
    failing_sends: frozenset[int],
    crashing_writes: frozenset[int],
    batch: int,
) -> None:
    topic = f"prop-{uuid.uuid4().hex[:10]}"
    config = KafkaConfig(broker.bootstrap, idempotence="off")
    await ensure_topic(config, topic, 3, 1)
    counter = [0]

    async def producer() -> FlakyProducer:
        return FlakyProducer(await start_producer(config), counter, failing_sends)

    relay = AuditRelay(
        ledger.compact_mapper,
        CrashingStore(relay_store(ledger, topic), crashing_writes),
        producer,
        RelayConfig(
            topic=topic,
            source="https://auth.example",
            batch_max=batch,
            interval=0.01,
            backoff_min=0.01,
            backoff_max=0.02,
        ),
    )
    task = asyncio.create_task(relay.run())
    try:
        for commit in history:  # commits land while the relay runs
            await asyncio.to_thread(ledger.append, [token(c) for c in commit])
            await asyncio.sleep(0.01)
        head = ledger.head()
        async with asyncio.timeout(30):
            while relay.position < head:  # noqa: ASYNC110 - the relay task advances it
                await asyncio.sleep(0.02)
    finally:
        relay.stop()
        await task
    expected = {audit_event_id(ledger.mapper.to_domain_event(n)) for n in ledger.read(0, 10_000)}
    records = await consume(broker.bootstrap, topic, lambda rs: expected <= distinct_ids(rs))
    assert distinct_ids(records) == expected  # all of them, and nothing invented
    assert in_order_per_key(records)
    assert all(r.key == r.message["subject"] for r in records)


@given(originator_id=st.uuids(), version=st.integers(min_value=1, max_value=2**31))
def test_an_events_public_id_is_the_uuid5_of_its_identity(
    originator_id: uuid.UUID, version: int
) -> None:
    namespace = uuid.uuid5(uuid.NAMESPACE_URL, "urn:keyledger:audit-event")
    expected = uuid.uuid5(namespace, f"{originator_id}/{version}")

    assert event_id(originator_id, version) == str(expected)
