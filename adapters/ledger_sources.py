"""Where `ledger verify` reads events from: the store itself, an export, or the audit topic.

An export is JSON Lines: a header line, then one line per event in notification order with
its position, identity, topic and stored state (base64), enough to recompute every leaf
without the store or the server.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any
from uuid import UUID

from aiokafka import TopicPartition

from adapters.archived_log import by_position
from adapters.kafka import KafkaConfig, start_consumer
from domain.ledger import LedgerEntry, LedgerError

EXPORT_FORMAT = "keyledger-ledger-export/1"
CHECKPOINT_TYPE = "keyledger.ledger.checkpoint_signed.v1"
_BATCH = 10_000


class ExportError(ValueError):
    """A file that is not a ledger export, or a line of one that cannot be read."""


def stored_rows(tables: Any) -> Iterator[tuple[int, Any, int, str, bytes]]:
    """Every committed event of a store as its raw row, in order (batched reads through
    `LedgerTables.stored_rows`, which reads even an edited row as the bytes it holds)."""
    after = 0
    while batch := tables.stored_rows(after, _BATCH):
        yield from batch
        after = batch[-1][0]


class StoreEntries:
    """The store's events, and those retention moved to archives (`archived`: each an
    iterable of the same rows in position order), merged back in position order."""

    def __init__(self, tables: Any, archived: Iterable[Iterable[Any]] = ()) -> None:
        self._tables = tables
        self._archived = archived

    def entries(self) -> list[LedgerEntry]:
        return [LedgerEntry.of_row(*row) for row in with_archived(self._tables, self._archived)]


def with_archived(
    tables: Any, archived: Iterable[Iterable[Any]] = ()
) -> Iterator[tuple[int, Any, int, str, bytes]]:
    """Every stored row and every archived one the store does not hold (a month loaded back is
    there twice), in position order; each read once, forward."""
    return by_position(stored_rows(tables), archived, lambda row: int(row[0]))


def write_export(rows: Iterable[tuple[int, Any, int, str, bytes]], out: IO[str]) -> int:
    """`rows` (`with_archived`) as an export: a header line, then one JSON line per event."""
    out.write(json.dumps({"format": EXPORT_FORMAT}) + "\n")
    count = 0
    for position, originator_id, version, topic, state in rows:
        line = {
            "position": position,
            "originator_id": str(originator_id),
            "version": version,
            "topic": topic,
            "state": base64.b64encode(state).decode(),
        }
        out.write(json.dumps(line, separators=(",", ":")) + "\n")
        count += 1
    return count


class ExportEntries:
    def __init__(self, path: Path) -> None:
        self._path = path

    def entries(self) -> list[LedgerEntry]:
        with self._path.open(encoding="utf-8") as lines:
            header = _parse(next(lines, ""), 1)
            if header.get("format") != EXPORT_FORMAT:
                raise ExportError(f"{self._path} is not a ledger export ({EXPORT_FORMAT})")
            return [_entry(_parse(line, number), number) for number, line in enumerate(lines, 2)]


def _parse(line: str, number: int) -> dict[str, Any]:
    try:
        value = json.loads(line)
    except json.JSONDecodeError:
        raise ExportError(f"line {number} is not JSON") from None
    if not isinstance(value, dict):
        raise ExportError(f"line {number} is not a JSON object")
    return value


def _entry(line: dict[str, Any], number: int) -> LedgerEntry:
    try:
        return LedgerEntry.of(
            int(line["position"]),
            UUID(line["originator_id"]),
            int(line["version"]),
            str(line["topic"]),
            base64.b64decode(line["state"], validate=True),
        )
    except (KeyError, ValueError, TypeError) as exc:
        raise ExportError(f"line {number} is not an exported event: {exc}") from None


class AuditTopicEntries:
    """The leaves as the audit topic carries them (each message's `ledgerentry`), and the
    checkpoint notes published there: enough to verify the ledger without the store."""

    def __init__(self, config: KafkaConfig, topic: str, timeout: float = 60.0) -> None:
        self._config, self._topic, self._timeout = config, topic, timeout
        self.notes: list[tuple[str, str]] = []
        self._entries: list[LedgerEntry] | None = None

    def entries(self) -> list[LedgerEntry]:
        """The topic's leaves in sequence order (read from the broker once)."""
        if self._entries is None:
            self._entries = self._read()
        return self._entries

    def _read(self) -> list[LedgerEntry]:
        messages = asyncio.run(self._read_all())
        by_id: dict[str, dict[str, Any]] = {}
        for message in messages:  # a topic is append-only: the first copy of an id counts
            if "ledgerentry" in message and "sequence" in message:
                by_id.setdefault(message["id"], message)
        ordered = sorted(by_id.values(), key=lambda m: int(m["sequence"]))
        self.notes = [
            (f"audit topic checkpoint {m['data']['size']}", m["data"]["note"])
            for m in ordered
            if m.get("type") == CHECKPOINT_TYPE
        ]
        try:
            return [LedgerEntry.decode(base64.b64decode(m["ledgerentry"])) for m in ordered]
        except (ValueError, LedgerError) as exc:
            raise ExportError(f"an audit message's ledgerentry cannot be read: {exc}") from None

    async def _read_all(self) -> list[dict[str, Any]]:
        """Every message of every partition, from the beginning to the end as of now."""
        consumer = await start_consumer(self._config, enable_auto_commit=False)
        try:
            await consumer.topics()  # fetches the cluster's metadata
            partitions = consumer.partitions_for_topic(self._topic) or set()
            assigned = [TopicPartition(self._topic, p) for p in sorted(partitions)]
            consumer.assign(assigned)
            await consumer.seek_to_beginning(*assigned)
            ends = await consumer.end_offsets(assigned)
            messages: list[dict[str, Any]] = []
            async with asyncio.timeout(self._timeout):
                while [tp for tp in assigned if await consumer.position(tp) < ends[tp]]:
                    batches = await consumer.getmany(timeout_ms=500)
                    for records in batches.values():
                        messages.extend(json.loads(r.value) for r in records if r.value)
            return messages
        finally:
            await consumer.stop()
