"""`ledger verify`: recompute the tree from the events and hold it against every checkpoint.

It needs only read access to a store (or an export) and the ledger's public key: no server,
no key-encryption key. Checkpoints come from the store and from files the auditor kept; a
checkpoint whose signature does not verify under the given keys is itself a finding.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol
from uuid import uuid5

from domain.anomaly_detection import ALERT_IDS, SEVERITY, Alert
from domain.checkpoint import Checkpoint, CheckpointError, NoteKey, SignatureCheck, open_checkpoint
from domain.ledger import LedgerEntry
from domain.ledger_audit import (
    Difference,
    Recorded,
    first_difference,
    leaves_of,
    roots_at,
    same_tree,
)


class EntrySource(Protocol):
    def entries(self) -> list[LedgerEntry]: ...


class RecordedTree(Protocol):
    def recorded(self) -> Recorded: ...


@dataclass(frozen=True)
class CheckpointCheck:
    """One checkpoint and what the recomputed tree says of it."""

    source: str
    size: int | None
    status: str  # matches | differs | beyond-log | bad-signature | malformed
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.status == "matches"


@dataclass
class VerificationReport:
    events: int
    recorded_size: int | None
    checkpoints: list[CheckpointCheck] = field(default_factory=list)
    difference: Difference | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return (
            not self.problems
            and self.difference is None
            and all(c.ok for c in self.checkpoints)
            and any(c.ok for c in self.checkpoints)
        )


def _opened(
    notes: Iterable[tuple[str, str]], keys: Sequence[NoteKey], verify: SignatureCheck
) -> tuple[list[tuple[str, Checkpoint]], list[CheckpointCheck]]:
    opened, refused = [], []
    for source, note in notes:
        errors = []
        for key in keys:
            try:
                opened.append((source, open_checkpoint(note, key, verify)))
                break
            except CheckpointError as exc:
                errors.append(str(exc))
        else:
            status = "bad-signature" if any("verify" in e for e in errors) else "malformed"
            refused.append(CheckpointCheck(source, None, status, "; ".join(errors)))
    return opened, refused


def verify_ledger(
    source: EntrySource,
    notes: Iterable[tuple[str, str]],
    keys: Sequence[NoteKey],
    verify: SignatureCheck,
    recorded: RecordedTree | None = None,
) -> VerificationReport:
    """Hold the events of `source` against every checkpoint note (source label, note text)."""
    entries = source.entries()
    leaves = leaves_of(entries)
    opened, refused = _opened(notes, keys, verify)
    roots = roots_at(leaves, [c.size for _, c in opened])
    tree = recorded.recorded() if recorded is not None else None
    report = VerificationReport(len(entries), len(tree) if tree is not None else None)
    report.checkpoints.extend(refused)
    for label, checkpoint in sorted(opened, key=lambda item: item[1].size):
        if checkpoint.size > len(leaves):
            report.checkpoints.append(
                CheckpointCheck(
                    label,
                    checkpoint.size,
                    "beyond-log",
                    f"the log has only {len(leaves)} events",
                )
            )
        elif roots[checkpoint.size] != checkpoint.root:
            report.checkpoints.append(CheckpointCheck(label, checkpoint.size, "differs"))
        else:
            report.checkpoints.append(CheckpointCheck(label, checkpoint.size, "matches"))
    report.problems.extend(_equivocations([c for _, c in opened]))
    if not opened:
        report.problems.append("no checkpoint could be verified with the given key(s)")
    if tree is not None:
        trusted = [c for _, c in opened if same_tree(tree, c.size, c.root)]
        if opened and not trusted:
            report.problems.append(
                "the tree's own record of its leaves matches no signed checkpoint: it was "
                "altered too, so the change can only be placed between checkpoints"
            )
        else:
            report.difference = first_difference(tree, entries, leaves)
    if report.difference is None and not all(c.ok for c in report.checkpoints):
        report.problems.append(_bracket(report.checkpoints))
    return report


def _equivocations(checkpoints: Sequence[Checkpoint]) -> list[str]:
    roots: dict[int, bytes] = {}
    problems = []
    for checkpoint in checkpoints:
        seen = roots.setdefault(checkpoint.size, checkpoint.root)
        if seen != checkpoint.root:
            problems.append(f"two signed checkpoints disagree at size {checkpoint.size}")
    return problems


def _bracket(checks: Sequence[CheckpointCheck]) -> str:
    good = [c.size for c in checks if c.ok and c.size is not None]
    bad = [c.size for c in checks if not c.ok and c.size is not None]
    if not bad:
        return "some checkpoints could not be checked"
    low = max((g for g in good if g < min(bad)), default=0)
    return f"the change lies among events {low} to {min(bad) - 1} (by index)"


def found_tampering(report: VerificationReport) -> str | None:
    """What a periodic audit should raise: a change against a signed checkpoint, not the mere
    absence of one (a new installation has no checkpoint yet)."""
    if report.difference is not None:
        d = report.difference
        return f"{d.kind} at index {d.index} (position {d.position}): {d.detail}"
    broken = [
        c for c in report.checkpoints if c.status in ("differs", "beyond-log", "bad-signature")
    ]
    if broken:
        return "; ".join(f"checkpoint {c.size}: {c.status}" for c in broken)
    equivocations = [p for p in report.problems if "disagree" in p]
    return "; ".join(equivocations) or None


def tamper_alert(summary: str, origin: str, checkpoint_size: int, at: datetime) -> Alert:
    """The critical alert for a store that no longer gives a signed root; one per finding."""
    return Alert(
        id=str(uuid5(ALERT_IDS, f"ledger_tampered|{origin}|{checkpoint_size}|{summary}")),
        rule="ledger_tampered",
        severity=SEVERITY["ledger_tampered"],
        subject=origin,
        subject_kind="ledger",
        window_start=at,
        window_end=at,
        first_seen=at,
        last_seen=at,
        count=1,
        threshold=1,
        evidence=(),
        summary=summary,
    )
