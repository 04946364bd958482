"""`keyledger detect`: the detector as a Kafka consumer group member on the audit topic.

It folds each batch into the rules' state; when a batch raised alerts, and otherwise at most
every second, it stores state, offsets and the new alerts in one transaction, publishes the
alerts (the stored unpublished ones, so an alert stored before a crash is published after
it), runs the opt-in responses, and only then commits the offsets to Kafka. On start, and
after any error, it reloads state and offsets from the store and seeks there: the store, not
the committed Kafka offsets, says what was counted, so a restart mid-window neither repeats
nor misses an alert.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import msgspec
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition

from adapters.alert_store import AlertStore
from adapters.kafka import KafkaConfig, start_consumer
from adapters.kafka_security import KafkaSecurity
from adapters.metrics import DETECTOR_ALERTS, DETECTOR_MESSAGES
from domain.anomaly_detection import Alert, Detector, Thresholds
from projections.stopping import Stopped, close_within, sleep_unless_stopped, unless_stopped

log = logging.getLogger(__name__)
_decode = msgspec.json.Decoder().decode


@dataclass(frozen=True)
class DetectorConfig:
    bootstrap: str
    audit_topic: str
    alerts_topic: str
    group: str
    thresholds: Thresholds
    batch_max: int = 5000
    backoff_max: float = 30.0
    save_interval: float = 1.0
    session_timeout_ms: int = 10_000
    verify_note: Any = None  # Ed25519 for the ledger's checkpoint notes (domain.ledger_watch)
    ledger_audit_interval: float = 3600.0
    security: KafkaSecurity = field(default_factory=KafkaSecurity)


class _SeekToStored(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, service: DetectorService) -> None:
        self._service = service

    async def on_partitions_revoked(self, revoked: Any) -> None:
        return None

    async def on_partitions_assigned(self, assigned: Any) -> None:
        consumer = self._service.consumer
        for tp in assigned:
            stored = self._service.offsets.get(str(tp.partition))
            if stored is not None and consumer is not None:
                consumer.seek(tp, stored)


class DetectorService:
    """Consume, detect, store, publish, respond, commit; until `stop()`."""

    def __init__(
        self,
        config: DetectorConfig,
        store: AlertStore,
        producer_factory: Callable[[], Awaitable[Any]],
        encode: Callable[[Alert], tuple[bytes, bytes]],
        respond: Callable[[Alert], Awaitable[None]] | None = None,
        ledger_audit: Callable[[], list[Alert]] | None = None,
    ) -> None:
        self.config = config
        self._store = store
        self._producer_factory = producer_factory
        self._encode = encode
        self._respond = respond
        self._ledger_audit = ledger_audit
        self._audited_at = 0.0
        self._stopping = asyncio.Event()
        self.consumer: AIOKafkaConsumer | None = None
        self._producer: Any = None
        self.offsets: dict[str, int] = {}
        self.detector = Detector(config.thresholds)
        self.consumed = 0
        self.raised = 0
        self._unsaved: dict[str, int] = {}
        self._unsaved_alerts: list[Alert] = []
        self._saved_at = 0.0
        self.lag: dict[int, int] = {}  # per assigned partition: messages not read yet
        self.assigned = 0  # partitions this member holds

    @property
    def name(self) -> str:
        return f"{self.config.group}:{self.config.audit_topic}"

    async def run(self) -> None:
        backoff = 0.2
        while not self._stopping.is_set():
            try:
                # Starting waits for the broker (and the group): abandoned at once on stop.
                await unless_stopped(self._stopping, self._start())
                while not self._stopping.is_set():
                    await self.step()
                    backoff = 0.2
                await self.save()  # a clean stop keeps everything it read
            except asyncio.CancelledError:
                raise
            except Stopped:
                pass
            except Exception as exc:
                log.warning(
                    "detector: %s: %s; restarting in %.1f s", type(exc).__name__, exc, backoff
                )
                await sleep_unless_stopped(self._stopping, backoff)
                backoff = min(backoff * 2, self.config.backoff_max)
            finally:
                await self._close()

    async def _start(self) -> None:
        self._unsaved, self._unsaved_alerts = {}, []  # what was not stored is read again
        state, self.offsets = await asyncio.to_thread(self._store.load, self.name)
        self.detector = Detector(self.config.thresholds, state, self.config.verify_note)
        self._producer = await self._producer_factory()
        await self._publish_stored()
        # 40 s for requests (aiokafka's default): a join may wait out a whole rebalance.
        kafka = KafkaConfig(self.config.bootstrap, security=self.config.security)
        self.consumer = await start_consumer(
            kafka,
            request_timeout_ms=40_000,
            group_id=self.config.group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            metadata_max_age_ms=5000,
            session_timeout_ms=self.config.session_timeout_ms,
            heartbeat_interval_ms=max(100, self.config.session_timeout_ms // 4),
            rebalance_timeout_ms=self.config.session_timeout_ms,
        )
        self.consumer.subscribe([self.config.audit_topic], listener=_SeekToStored(self))

    async def step(self) -> int:
        """One batch: detect, store, publish, respond, commit. The number of messages."""
        assert self.consumer is not None
        await self._audit_ledger()
        batches = await self.consumer.getmany(timeout_ms=200, max_records=self.config.batch_max)
        self._measure_lag(batches)
        if not batches:
            return 0
        count = 0
        alerts: list[Alert] = []
        for tp in sorted(batches, key=lambda tp: tp.partition):
            for record in batches[tp]:
                with contextlib.suppress(msgspec.DecodeError, TypeError, AttributeError):
                    alerts.extend(self.detector.observe(_decode(record.value)))
                self._unsaved[str(tp.partition)] = record.offset + 1
                count += 1
        self._unsaved_alerts.extend(alerts)
        self.consumed += count
        self.raised += len(alerts)
        DETECTOR_MESSAGES.inc(count)
        for alert in alerts:
            DETECTOR_ALERTS.labels(alert.rule).inc()
        # State and offsets are stored together: at once when there are alerts, else at most
        # every `save_interval` (the state is the costly part); offsets are committed to
        # Kafka only after they are stored.
        if alerts or time.monotonic() - self._saved_at >= self.config.save_interval:
            await self.save()
        return count

    def _measure_lag(self, batches: dict[Any, list[Any]]) -> None:
        """Each assigned partition's high watermark (from the last fetch) minus the next
        offset to read, once both are known (`keyledger_detector_consumer_lag_messages`)."""
        assert self.consumer is not None
        lag = {}
        assignment = self.consumer.assignment()
        for tp in assignment:
            highwater = self.consumer.highwater(tp)
            read = batches.get(tp)
            position = read[-1].offset + 1 if read else self._next_offset(tp.partition)
            if highwater is not None and (position is not None or highwater == 0):
                lag[tp.partition] = max(0, highwater - (position or 0))
        self.lag, self.assigned = lag, len(assignment)

    def _next_offset(self, partition: int) -> int | None:
        key = str(partition)
        return self._unsaved.get(key, self.offsets.get(key))

    async def _audit_ledger(self) -> None:
        """Every `ledger_audit_interval`, recompute the ledger from the store (a thread)."""
        if self._ledger_audit is None:
            return
        if time.monotonic() - self._audited_at < self.config.ledger_audit_interval:
            return
        self._audited_at = time.monotonic()
        try:
            alerts = await asyncio.to_thread(self._ledger_audit)
        except Exception as exc:
            log.warning("ledger audit failed: %s: %s", type(exc).__name__, exc)
            return
        if alerts:
            self._unsaved_alerts.extend(alerts)
            self.raised += len(alerts)
            for alert in alerts:
                DETECTOR_ALERTS.labels(alert.rule).inc()
            await self.save()

    async def save(self) -> None:
        """Store state, offsets and alerts; publish; respond; commit the offsets to Kafka."""
        if self.consumer is None:
            return
        offsets = {**self.offsets, **self._unsaved}
        alerts = self._unsaved_alerts
        await asyncio.to_thread(self._store.save, self.name, self.detector.state(), offsets, alerts)
        self.offsets, self._unsaved, self._unsaved_alerts = offsets, {}, []
        self._saved_at = time.monotonic()
        if alerts:  # older unpublished ones were published by `_start`
            await self._publish_stored()
        if self._respond is not None:
            for alert in alerts:
                await self._respond(alert)
        if offsets:
            await self.consumer.commit(
                {TopicPartition(self.config.audit_topic, int(p)): o for p, o in offsets.items()}
            )

    async def _publish_stored(self) -> None:
        pending = await asyncio.to_thread(self._store.unpublished)
        if not pending:
            return
        deliveries = []
        for alert in pending:
            key, value = self._encode(alert)
            deliveries.append(await self._producer.send(self.config.alerts_topic, value, key))
        await asyncio.gather(*deliveries)
        await asyncio.to_thread(self._store.mark_published, [a.id for a in pending])
        for alert in pending:
            log.warning(
                "alert %s %s %s: %s", alert.severity, alert.rule, alert.subject, alert.summary
            )

    async def _close(self) -> None:
        for closing in (self.consumer, self._producer):
            if closing is not None:
                await close_within(closing.stop())
        self.consumer, self._producer = None, None
        self.lag, self.assigned = {}, 0  # no partitions held: nothing to report

    def stop(self) -> None:
        self._stopping.set()
