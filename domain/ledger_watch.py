"""Watching the ledger's checkpoints on the audit stream, as an outside monitor would.

Every `keyledger.ledger.checkpoint_signed.v1` message carries the signed note and the proof
that it extends the checkpoint before it. The watch remembers the checkpoints it has seen
and the ledger keys announced on the stream, and finds, without the store:

- a note that does not verify under a known ledger key, or says something else than the
  message's own size and root;
- two checkpoints for one tree size with different roots (the log told two stories);
- a checkpoint that does not extend the last one seen: its proof fails, it starts from an
  older checkpoint than one already published (a rollback), or it is smaller.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from domain.checkpoint import CheckpointError, NoteKey, SignatureCheck, open_checkpoint
from domain.merkle_tree import verify_consistency

CHECKPOINT_SIGNED = "keyledger.ledger.checkpoint_signed.v1"
KEY_GENERATED = "keyledger.ledger.key_generated.v1"
KEEP = 64  # checkpoints remembered (the newest), enough to catch a rollback of a day's worth


@dataclass(frozen=True)
class LedgerFinding:
    origin: str
    size: int
    summary: str


def _decode(text: Any) -> bytes:
    return base64.b64decode(str(text), validate=True)


class LedgerWatch:
    """Folds checkpoint and key messages; `observe` returns what is wrong with one."""

    def __init__(self, verify: SignatureCheck | None, state: dict[str, Any] | None = None) -> None:
        self._verify = verify
        self._roots: dict[int, str] = {}
        self._keys: list[str] = []
        if state:
            self._roots = {int(k): v for k, v in state.get("roots", {}).items()}
            self._keys = list(state.get("keys", []))

    def state(self) -> dict[str, Any]:
        return {"roots": {str(k): v for k, v in self._roots.items()}, "keys": self._keys}

    def observe(self, kind: Any, data: dict[str, Any]) -> LedgerFinding | None:
        if kind == KEY_GENERATED:
            self._learn_key(data)
            return None
        if kind != CHECKPOINT_SIGNED:
            return None
        try:
            size, root = int(data["size"]), _decode(data["root"])
            previous = int(data.get("previous_size", 0))
            proof = [_decode(p) for p in data.get("consistency", [])]
            origin = str(data.get("origin", ""))
        except (KeyError, TypeError, ValueError, binascii.Error):
            return LedgerFinding("unknown", 0, "a checkpoint message that cannot be read")
        finding = self._check(origin, size, root, previous, proof, str(data.get("note", "")))
        self._remember(size, root)
        return finding

    def _learn_key(self, data: dict[str, Any]) -> None:
        try:
            key = NoteKey(str(data["name"]), _decode(data["public_key"]))
        except (KeyError, TypeError, ValueError, binascii.Error):
            return
        if key.encoded() not in self._keys:
            self._keys.append(key.encoded())

    def _check(
        self, origin: str, size: int, root: bytes, previous: int, proof: list[bytes], note: str
    ) -> LedgerFinding | None:
        def found(summary: str) -> LedgerFinding:
            return LedgerFinding(origin, size, summary)

        problem = self._note_problem(note, origin, size, root)
        if problem:
            return found(problem)
        seen = self._roots.get(size)
        if seen is not None and _decode(seen) != root:
            return found(f"two checkpoints of size {size} with different roots")
        if not self._roots or seen is not None:
            return None
        latest = max(self._roots)
        if size < latest:
            return found(f"a checkpoint of size {size} after one of size {latest}: a rollback")
        if previous < latest:
            return found(
                f"a checkpoint extends size {previous}, not the published size {latest}: "
                "a checkpoint was dropped from the store"
            )
        if previous in self._roots and not verify_consistency(
            previous, size, _decode(self._roots[previous]), root, proof
        ):
            return found(f"the tree at {size} does not extend the checkpoint at {previous}")
        return None

    def _note_problem(self, note: str, origin: str, size: int, root: bytes) -> str | None:
        if self._verify is None or not self._keys:
            return None
        verify: Callable[[bytes, bytes, bytes], bool] = self._verify
        for encoded in self._keys:
            key = NoteKey.decode(encoded)
            if key.name != origin:
                continue
            try:
                checkpoint = open_checkpoint(note, key, verify)
            except CheckpointError:
                continue
            if (checkpoint.size, checkpoint.root) != (size, root):
                return "the signed note says another size or root than its message"
            return None
        return "the checkpoint's note does not verify under any ledger key on the stream"

    def _remember(self, size: int, root: bytes) -> None:
        self._roots.setdefault(size, base64.b64encode(root).decode())
        if len(self._roots) > KEEP:
            for old in sorted(self._roots)[: len(self._roots) - KEEP]:
                del self._roots[old]
