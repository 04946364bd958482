"""The ledger as the API offers it: checkpoints, public keys, proofs, and the admin's requests.

Checkpoints and keys are public (anyone outside should keep them); proofs are for any admin;
asking for a checkpoint now or rotating the ledger key needs `keyledger:admin:keys`.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError

from adapters.key_vault import KeyVault
from adapters.ledger_signer import generate_ledger_key, note_key
from adapters.ledger_store import LedgerTables, StoredCheckpoint
from api.usecases.ports import Clock
from domain.admin_scopes import Admin, Permission
from domain.ledger import LedgerEntry, LedgerError, node_from_tiles
from domain.ledger_keys import LEDGER_KEYS_ID, CheckpointRequest, LedgerKey, LedgerKeys
from domain.merkle_tree import ProofError, consistency_proof, inclusion_proof, leaf_hash


class EventStore(Protocol):
    @property
    def repository(self) -> Any: ...

    def read(self, after: int, limit: int) -> Any: ...

    def save(self, *objects: Any) -> Any: ...


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def checkpoint_row(checkpoint: StoredCheckpoint) -> dict[str, Any]:
    return {
        "size": checkpoint.size,
        "root": _b64(checkpoint.root),
        "note": checkpoint.note,
        "signed_at": checkpoint.signed_at,
    }


def key_row(key: LedgerKey) -> dict[str, Any]:
    return {
        "name": key.name,
        "key_id": key.key_id,
        "verifier_key": note_key(key).encoded(),
        "generated_at": key.generated_at.isoformat(),
    }


@dataclass(frozen=True)
class Requested:
    """A checkpoint asked for: the one that covers the request, if it came in time."""

    checkpoint: StoredCheckpoint | None
    position: int


class LedgerQueries:
    """Reads of the ledger for the public and admin endpoints."""

    def __init__(self, events: EventStore, tables: LedgerTables) -> None:
        self._events = events
        self._tables = tables

    def latest(self) -> StoredCheckpoint | None:
        return self._tables.latest_checkpoint()

    def checkpoints(self, after_size: int, limit: int) -> list[StoredCheckpoint]:
        return self._tables.checkpoints(after_size=after_size, limit=limit)

    def public_keys(self) -> list[LedgerKey]:
        try:
            keys: LedgerKeys = self._events.repository.get(LEDGER_KEYS_ID)
        except AggregateNotFoundError:
            return []
        return list(keys.keys)

    def _size(self, size: int | None) -> int:
        if size is not None:
            if not 0 < size <= self._tables.tree().size:
                raise LedgerError(f"the tree has never had {size} leaves")
            return size
        latest = self.latest()
        if latest is None:
            raise LedgerError("no checkpoint has been signed yet: ask for one")
        return latest.size

    def _nodes(self, level: int, index: int) -> bytes:
        return node_from_tiles(level, index, self._tables.tile)

    def inclusion(
        self, *, position: int | None, event: tuple[UUID, int] | None, size: int | None, by: Admin
    ) -> dict[str, Any]:
        """The leaf of one event and its path to the root at `size` (default: last checkpoint)."""
        by.require(Permission.READ)
        if position is None:
            if event is None:
                raise LedgerError("name the event: position, or aggregate id and version")
            position = self._tables.position_of(*event)
            if position is None:
                raise LedgerError(f"no event {event[0]} v{event[1]} in the store")
        index = self._tables.leaf_index(position)
        if index is None:
            raise LedgerError(f"the event at position {position} is not in the tree yet")
        tree_size = self._size(size)
        if index >= tree_size:
            raise LedgerError(
                f"the event at position {position} came after the tree of {tree_size} leaves"
            )
        stored = self._events.read(position - 1, 1)
        if not stored or stored[0].id != position:
            raise LedgerError(f"the event at position {position} is no longer in the store")
        n = stored[0]
        entry = LedgerEntry.of_row(n.id, n.originator_id, n.originator_version, n.topic, n.state)
        try:
            path = inclusion_proof(index, tree_size, self._nodes)
        except ProofError as exc:
            raise LedgerError(str(exc)) from None
        return {
            "position": position,
            "index": index,
            "size": tree_size,
            "entry": _b64(entry.encoded()),
            "leaf_hash": _b64(leaf_hash(entry.encoded())),
            "path": [_b64(p) for p in path],
            "checkpoint": self._note(tree_size),
        }

    def consistency(self, old_size: int, new_size: int, *, by: Admin) -> dict[str, Any]:
        by.require(Permission.READ)
        if not 0 < old_size <= new_size <= self._tables.tree().size:
            raise LedgerError(
                f"sizes must satisfy 0 < from <= to <= {self._tables.tree().size} (the tree)"
            )
        proof = consistency_proof(old_size, new_size, self._nodes)
        return {
            "from": old_size,
            "to": new_size,
            "proof": [_b64(p) for p in proof],
            "from_checkpoint": self._note(old_size),
            "to_checkpoint": self._note(new_size),
        }

    def _note(self, size: int) -> str | None:
        found = self._tables.checkpoints(after_size=size - 1, limit=1)
        return found[0].note if found and found[0].size == size else None


class LedgerAdmin:
    """What an administrator may do to the ledger: ask for a checkpoint, rotate its key."""

    def __init__(
        self,
        events: EventStore,
        tables: LedgerTables,
        vault: KeyVault,
        clock: Clock,
        origin: str,
        nudge: Callable[[], None] | None = None,
    ) -> None:
        self._events, self._tables, self._vault = events, tables, vault
        self._clock, self._origin = clock, origin
        self._nudge = nudge  # wakes this process's ledger builder, when it runs here

    def request_checkpoint(
        self, *, by: Admin, reason: str | None = None, wait: float = 10.0
    ) -> Requested:
        """Record the request, then wait for the checkpoint that covers it (the builder's)."""
        by.require(Permission.MANAGE_KEYS)
        request = CheckpointRequest(at=self._clock.now(), actor=by.actor, reason=reason)
        recordings = self._events.save(request)
        position = int(recordings[-1].notification.id)
        if self._nudge is not None:
            self._nudge()
        deadline = time.monotonic() + wait
        while True:
            latest = self._tables.latest_checkpoint()
            if latest is not None and latest.position >= position:
                return Requested(latest, position)
            if time.monotonic() >= deadline:
                return Requested(None, position)
            time.sleep(0.02)

    def rotate_key(self, *, by: Admin, reason: str | None = None) -> LedgerKey:
        """A new checkpoint-signing key; checkpoints signed before keep verifying with theirs."""
        by.require(Permission.MANAGE_KEYS)
        now: datetime = self._clock.now()
        try:
            keys: LedgerKeys = self._events.repository.get(LEDGER_KEYS_ID)
        except AggregateNotFoundError:
            keys = LedgerKeys(at=now)
        key = generate_ledger_key(self._vault, self._origin, now)
        keys.add_key(
            name=key.name,
            key_id=key.key_id,
            public_key=key.public_key,
            sealed_private_key=key.sealed_private_key,
            at=now,
            actor=by.actor,
            reason=reason,
        )
        self._events.save(keys)
        return key
