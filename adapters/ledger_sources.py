"""Where `ledger verify` reads events from: the store itself, or an export of it.

An export is JSON Lines: a header line, then one line per event in notification order with
its position, identity, topic and stored state (base64), enough to recompute every leaf
without the store or the server.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any
from uuid import UUID

from domain.ledger import LedgerEntry

EXPORT_FORMAT = "keyledger-ledger-export/1"
_BATCH = 10_000


class ExportError(ValueError):
    """A file that is not a ledger export, or a line of one that cannot be read."""


def stored_events(log: Any) -> Iterator[Any]:
    """Every committed notification of an event store, in order (batched reads)."""
    after = 0
    while batch := log.read(after, _BATCH):
        yield from batch
        after = batch[-1].id


class StoreEntries:
    def __init__(self, log: Any) -> None:
        self._log = log

    def entries(self) -> list[LedgerEntry]:
        return [
            LedgerEntry.of_row(n.id, n.originator_id, n.originator_version, n.topic, n.state)
            for n in stored_events(self._log)
        ]


def write_export(log: Any, out: IO[str]) -> int:
    out.write(json.dumps({"format": EXPORT_FORMAT}) + "\n")
    count = 0
    for n in stored_events(log):
        line = {
            "position": n.id,
            "originator_id": str(n.originator_id),
            "version": n.originator_version,
            "topic": n.topic,
            "state": base64.b64encode(n.state).decode(),
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
