"""The detector raises a critical alert for a ledger checkpoint that breaks with the past."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from adapters.ledger_signer import ed25519_verify
from domain.anomaly_detection import Detector, Thresholds
from domain.checkpoint import Checkpoint, NoteKey, sign_note
from domain.merkle_tree import CompactRange, consistency_proof, leaf_hash, root_of

ORIGIN = "auth.example.test/ledger"
T0 = datetime(2026, 12, 1, tzinfo=UTC)


class Log:
    """A ledger's side of the stream: a growing tree, its key, and its checkpoint messages."""

    def __init__(self) -> None:
        self.private = Ed25519PrivateKey.generate()
        self.key = NoteKey(ORIGIN, self.private.public_key().public_bytes_raw())
        self.leaves: list[bytes] = []
        self.nodes: dict[tuple[int, int], bytes] = {}
        self.tree = CompactRange()
        self.sequence = 0

    def grow(self, count: int) -> None:
        for _ in range(count):
            leaf = leaf_hash(b"event %d" % len(self.leaves))
            self.leaves.append(leaf)
            for level, index, digest in self.tree.append(leaf):
                self.nodes[level, index] = digest

    def message(self, kind: str, data: dict[str, Any]) -> dict[str, Any]:
        self.sequence += 1
        return {
            "type": kind,
            "id": f"m{self.sequence}",
            "time": (T0 + timedelta(seconds=self.sequence)).isoformat(),
            "data": data,
        }

    def key_message(self) -> dict[str, Any]:
        public = base64.b64encode(self.key.public_key).decode()
        return self.message(
            "keyledger.ledger.key_generated.v1", {"name": ORIGIN, "public_key": public}
        )

    def checkpoint(
        self, size: int, previous: int, *, root: bytes | None = None, signer: Any = None
    ) -> dict[str, Any]:
        root = root if root is not None else root_of(self.leaves[:size])
        note = sign_note(
            Checkpoint(ORIGIN, size, root).body(), self.key, (signer or self.private).sign
        )
        proof = (
            consistency_proof(previous, size, lambda lv, i: self.nodes[lv, i]) if previous else []
        )
        return self.message(
            "keyledger.ledger.checkpoint_signed.v1",
            {
                "origin": ORIGIN,
                "size": size,
                "root": base64.b64encode(root).decode(),
                "note": note,
                "previous_size": previous,
                "consistency": [base64.b64encode(p).decode() for p in proof],
            },
        )


def watched() -> tuple[Detector, Log]:
    detector, log = Detector(Thresholds(), verify_note=ed25519_verify), Log()
    assert detector.observe(log.key_message()) == []
    log.grow(10)
    assert detector.observe(log.checkpoint(10, 0)) == []
    return detector, log


def rules(alerts: list[Any]) -> list[tuple[str, str, str]]:
    return [(a.rule, a.severity, a.subject_kind) for a in alerts]


def test_checkpoints_that_extend_each_other_raise_nothing_even_when_published_twice() -> None:
    detector, log = watched()
    log.grow(7)
    second = log.checkpoint(17, 10)
    assert detector.observe(second) == []
    assert detector.observe(second) == []  # the relay delivers at least once


def test_a_checkpoint_whose_proof_does_not_reach_the_last_one_is_critical() -> None:
    detector, log = watched()
    log.leaves[3] = leaf_hash(b"rewritten")  # history changed under the published checkpoint
    log.nodes = {}
    rewritten = CompactRange()
    for leaf in log.leaves:
        for level, i, digest in rewritten.append(leaf):
            log.nodes[level, i] = digest
    log.grow(5)
    alerts = detector.observe(log.checkpoint(15, 10))
    assert rules(alerts) == [("ledger_inconsistent", "critical", "ledger")]
    assert "does not extend" in alerts[0].summary


def test_two_roots_for_one_size_are_critical() -> None:
    detector, log = watched()
    alerts = detector.observe(log.checkpoint(10, 0, root=b"\x01" * 32))
    assert rules(alerts) == [("ledger_inconsistent", "critical", "ledger")]
    assert "different roots" in alerts[0].summary


def test_a_smaller_checkpoint_after_a_larger_one_is_a_rollback() -> None:
    detector, log = watched()
    alerts = detector.observe(log.checkpoint(6, 0))
    assert "rollback" in alerts[0].summary


def test_a_checkpoint_that_skips_a_published_one_is_critical() -> None:
    detector, log = watched()
    log.grow(10)
    assert detector.observe(log.checkpoint(20, 10)) == []
    log.grow(5)
    alerts = detector.observe(log.checkpoint(25, 10))  # as if the one at 20 was deleted
    assert "dropped" in alerts[0].summary


def test_a_note_not_signed_by_a_ledger_key_on_the_stream_is_critical() -> None:
    detector, log = watched()
    log.grow(2)
    alerts = detector.observe(log.checkpoint(12, 10, signer=Ed25519PrivateKey.generate()))
    assert "does not verify" in alerts[0].summary


def test_the_watch_survives_a_restart_through_the_detectors_state() -> None:
    detector, log = watched()
    restarted = Detector(Thresholds(), detector.state(), verify_note=ed25519_verify)
    assert "rollback" in restarted.observe(log.checkpoint(4, 0))[0].summary
