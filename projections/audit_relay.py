"""The audit relay: a projection of the notification log onto the Kafka audit topic.

It reads committed events after its stored position, publishes each as a CloudEvents message
keyed by client id (so order per client is kept), waits until the broker has acknowledged the
whole batch (`acks=all`), and only then stores the batch's last notification id as its new
position. A crash or a broker outage therefore loses nothing: the relay starts again from the
stored position. The price is at-least-once delivery: a batch that was (partly) acknowledged
before the position was stored is published again, with the same event ids, so consumers
deduplicate by `id`.

One relay publishes at a time (see `adapters/relay_store.py`); the others wait as
standbys and take over when the active one's lock goes away.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol
from uuid import UUID

from aiokafka.errors import KafkaError

from adapters.compact_events import ISSUED_TOPIC, CompactMapper
from adapters.kafka import key_partitioner
from adapters.metrics import RELAY_PUBLISH_ERRORS, RELAY_PUBLISHED
from adapters.relay_store import RelayStore
from adapters.tracing import Delivery, NoTracing, Tracing
from domain.event_ids import event_id
from domain.ledger import LedgerEntry
from projections.audit_format import (
    AUDIT_TYPES,
    ISSUED_AUDIT_TYPE,
    audit_message,
    stored_issued_message,
)
from projections.stopping import Stopped, close_within, unless_stopped

log = logging.getLogger(__name__)


def _entry(n: Any) -> bytes:
    return LedgerEntry.of_row(
        n.id, n.originator_id, n.originator_version, n.topic, n.state
    ).encoded()


class Outgoing(NamedTuple):
    """One stored event as the relay publishes it: its message, and what its span names."""

    position: int
    key: bytes
    value: bytes
    originator_id: UUID
    originator_version: int
    audit_type: str


Headers = list[tuple[str, bytes]]


class Producer(Protocol):
    """What the relay uses of aiokafka's producer."""

    async def send(
        self,
        topic: str,
        value: bytes,
        key: bytes,
        *,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> Awaitable[Any]: ...

    async def partitions_for(self, topic: str) -> set[int]: ...

    def create_batch(self) -> Any: ...

    async def send_batch(self, batch: Any, topic: str, *, partition: int) -> Awaitable[Any]: ...

    async def stop(self) -> None: ...


@dataclass(frozen=True)
class RelayConfig:
    topic: str
    source: str
    batch_max: int = 1000
    interval: float = 0.1
    standby_interval: float = 1.0
    backoff_min: float = 0.2
    backoff_max: float = 30.0


class AuditRelay:
    """Publishes the log to the audit topic; run it with `run()` until `stop()`.

    With tracing on, each batch is a `keyledger.relay.publish_batch` span and each message a
    PRODUCER span `publish <topic>`, ended when the broker acknowledges it, carrying the
    event's `cloudevents.event_id` (the id the token request's `keyledger.commit_wait` span
    names) and handing its context to consumers in the message's `traceparent` header.
    """

    def __init__(
        self,
        mapper: CompactMapper,
        positions: RelayStore,
        producer_factory: Callable[[], Awaitable[Producer]],
        config: RelayConfig,
        tracing: Tracing | None = None,
    ) -> None:
        self.tracing: Tracing = tracing or NoTracing()
        self._mapper = mapper
        self._positions = positions
        self._producer_factory = producer_factory
        self.config = config
        self._producer: Producer | None = None
        self._stopping = asyncio.Event()
        self.active = False
        self.position = 0
        self.published = 0
        self.publish_errors = 0

    async def run(self) -> None:
        """Hold the lock, publish, retry with backoff; returns after `stop()`."""
        backoff = self.config.backoff_min
        while not self._stopping.is_set():
            try:
                if not self.active:
                    self.active = await asyncio.to_thread(self._positions.acquire)
                    if not self.active:
                        await self._sleep(self.config.standby_interval)
                        continue
                    self.position = await asyncio.to_thread(self._positions.position)
                    log.info("audit relay active from position %d", self.position)
                if self._producer is None:  # waits for the broker: abandoned at once on stop
                    self._producer = await unless_stopped(self._stopping, self._producer_factory())
                began = time.monotonic()
                published = await self.publish_batch()
                backoff = self.config.backoff_min
                rest = self.config.interval - (time.monotonic() - began)
                if published < self.config.batch_max and rest > 0:  # caught up: wait the rest
                    await self._sleep(rest)
            except asyncio.CancelledError:
                raise
            except Stopped:
                pass
            except Exception as exc:
                self.publish_errors += 1
                RELAY_PUBLISH_ERRORS.inc()
                log.warning(
                    "audit relay: %s: %s; retrying from position %d in %.1f s",
                    type(exc).__name__,
                    exc,
                    self.position,
                    backoff,
                )
                # A broker error keeps the lock (a standby could do no better); anything
                # else (the store, the lock's connection) gives it up and starts over.
                await self._reset(lost_lock=not isinstance(exc, KafkaError | TimeoutError))
                await self._sleep(backoff)
                backoff = min(backoff * 2, self.config.backoff_max)
        await self._reset(lost_lock=True)

    async def publish_batch(self) -> int:
        """Publish the next committed events; store the position once all are acknowledged."""
        assert self._producer is not None
        batch = await asyncio.to_thread(self._read)
        if not batch:
            return 0
        if self.tracing.enabled:
            await self._publish_traced(batch)
        else:
            await self._publish(batch)
        last = batch[-1].position
        await asyncio.to_thread(self._positions.advance, self.position, last)
        self.position = last
        self.published += len(batch)
        RELAY_PUBLISHED.inc(len(batch))
        return len(batch)

    async def _publish(self, batch: list[Outgoing]) -> None:
        """`publish_batch`'s messages as one record batch per partition, in order, each
        partition the key's as the producer's partitioner picks it (a `send` per message
        cost the event loop about as much as building the message)."""
        assert self._producer is not None
        topic = self.config.topic
        partitions = sorted(await self._producer.partitions_for(topic))
        open_batches: dict[int, Any] = {}
        acks: list[Awaitable[Any]] = []
        for message in batch:
            key, value = message.key, message.value
            partition = key_partitioner(key, partitions, partitions)
            records = open_batches.get(partition)
            if records is None:
                records = open_batches[partition] = self._producer.create_batch()
            if records.append(key=key, value=value, timestamp=None) is None:  # full: send it
                acks.append(await self._producer.send_batch(records, topic, partition=partition))
                records = open_batches[partition] = self._producer.create_batch()
                records.append(key=key, value=value, timestamp=None)
        for partition, records in open_batches.items():
            acks.append(await self._producer.send_batch(records, topic, partition=partition))
        await asyncio.gather(*acks)

    async def _publish_traced(self, batch: list[Outgoing]) -> None:
        """`publish_batch`'s sends, each in a producer span ended at its acknowledgement."""
        assert self._producer is not None
        assert not isinstance(self.tracing, NoTracing)
        topic = self.config.topic
        with self.tracing.span("keyledger.relay.publish_batch") as span:
            span.set_attribute("messaging.batch.message_count", len(batch))
            deliveries: list[Delivery] = []
            acks: list[Awaitable[Any]] = []
            try:
                for message in batch:
                    delivery = self.tracing.begin_delivery(
                        f"publish {topic}",
                        {
                            "messaging.system": "kafka",
                            "messaging.operation.type": "publish",
                            "messaging.destination.name": topic,
                            "messaging.kafka.message.key": message.key.decode(),
                            "cloudevents.event_id": event_id(
                                message.originator_id, message.originator_version
                            ),
                            "cloudevents.event_type": message.audit_type,
                            "keyledger.notification_id": message.position,
                        },
                    )
                    deliveries.append(delivery)
                    acks.append(
                        await self._producer.send(
                            topic, message.value, message.key, headers=delivery.headers
                        )
                    )
                outcomes = await asyncio.gather(*acks, return_exceptions=True)
            except BaseException as exc:
                for delivery in deliveries:
                    delivery.end(exc)
                raise
            failure: BaseException | None = None
            for delivery, outcome in zip(deliveries, outcomes, strict=True):
                error = outcome if isinstance(outcome, BaseException) else None
                delivery.end(error)
                failure = failure or error
            if failure is not None:
                raise failure

    def _read(self) -> list[Outgoing]:
        notifications = self._positions.read(self.position, self.config.batch_max)
        return [self._outgoing(n) for n in notifications]

    def _outgoing(self, n: Any) -> Outgoing:
        source, entry = self.config.source, _entry(n)
        if n.topic == ISSUED_TOPIC:  # nearly every event: written out from its stored fields
            identity, fields = self._mapper.issued_fields(n)
            key, value = stored_issued_message(
                fields, identity, n.originator_version, n.id, source, entry
            )
            return Outgoing(n.id, key, value, identity, n.originator_version, ISSUED_AUDIT_TYPE)
        event = self._mapper.to_domain_event(n)
        key, value = audit_message(event, n.id, source, entry)
        return Outgoing(
            n.id,
            key,
            value,
            event.originator_id,
            event.originator_version,
            AUDIT_TYPES[type(event)],
        )

    async def _reset(self, *, lost_lock: bool) -> None:
        """Drop the producer (and, after a store error, the lock): start clean next time."""
        if self._producer is not None:
            producer, self._producer = self._producer, None
            await close_within(producer.stop())
        if lost_lock and self.active:
            self.active = False
            await asyncio.to_thread(self._positions.release)

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)

    def stop(self) -> None:
        self._stopping.set()
