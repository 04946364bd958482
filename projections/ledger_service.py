"""The ledger service: one active builder folds the log into the tree and signs checkpoints.

A checkpoint is signed when the tree has grown by something other than checkpoints and the
interval has passed since the last one, or at once when an administrator asks (a
`CheckpointRequest` in the log). Before signing, the builder checks that its stored tiles
still give the last checkpoint's root; if they do not, it refuses to sign and says so, since
signing over a rewritten history would launder it.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from eventsourcing.utils import get_topic

from adapters.ledger_store import LedgerTables, StoredCheckpoint
from domain.checkpoint import Checkpoint, sign_note
from domain.ledger import node_from_tiles
from domain.ledger_keys import CheckpointRequest, LedgerCheckpoint, LedgerKey, LedgerKeys
from domain.merkle_tree import consistency_proof, verify_consistency
from projections.follower import Health
from projections.ledger import LedgerBuilder

log = logging.getLogger(__name__)
SIGNED_TOPIC = get_topic(LedgerCheckpoint.Signed)
RETRY_AFTER = 2.0  # seconds before a failed builder reloads from the store and tries again
REQUESTED_TOPIC = get_topic(CheckpointRequest.Requested)


class TreeTampered(Exception):
    """The stored tree no longer gives the root of a checkpoint it signed."""


@dataclass(frozen=True)
class LedgerConfig:
    origin: str
    checkpoint_interval: float = 60.0
    interval: float = 0.5
    standby_interval: float = 1.0


class LedgerKeyring:
    """What the service needs of the store for keys and checkpoints (the event store)."""

    def __init__(self, ledger: Any, vault: Any, clock: Callable[[], datetime]) -> None:
        self._ledger, self._vault, self._clock = ledger, vault, clock

    def current(self, origin: str) -> LedgerKey:
        """The key that signs now, made at the first checkpoint of a new installation."""
        from adapters.ledger_signer import generate_ledger_key
        from domain.ledger_keys import LEDGER_KEYS_ID

        try:
            keys: LedgerKeys = self._ledger.repository.get(LEDGER_KEYS_ID)
        except Exception as exc:
            if type(exc).__name__ != "AggregateNotFoundError":
                raise
            now = self._clock()
            keys = LedgerKeys(at=now)
            key = generate_ledger_key(self._vault, origin, now)
            keys.add_key(**_key_fields(key), at=now, actor="ledger", reason="first checkpoint")
            self._ledger.save(keys)
        assert keys.current is not None
        return keys.current

    def signer(self, key: LedgerKey) -> Any:
        from adapters.ledger_signer import CheckpointSigner

        return CheckpointSigner(self._vault, key)

    def checkpoint_event(self, position: int) -> LedgerCheckpoint.Signed:
        """The checkpoint event stored at `position`, decoded (a few a day: no hot path)."""
        [notification] = self._ledger.read(position - 1, 1)
        event: LedgerCheckpoint.Signed = self._ledger.mapper.to_domain_event(notification)
        return event

    def record(self, checkpoint: LedgerCheckpoint) -> None:
        self._ledger.save(checkpoint)

    def now(self) -> datetime:
        return self._clock()


def _key_fields(key: LedgerKey) -> dict[str, str]:
    return {
        "name": key.name,
        "key_id": key.key_id,
        "public_key": key.public_key,
        "sealed_private_key": key.sealed_private_key,
    }


class LedgerService:
    """Run with `run()` until `stop()`; `step()` is one pass (tests call it directly)."""

    def __init__(
        self,
        builder: LedgerBuilder,
        tables: LedgerTables,
        keyring: LedgerKeyring,
        config: LedgerConfig,
        lock: Callable[[], AbstractContextManager[bool]],
    ) -> None:
        self.builder = builder
        self._tables = tables
        self._keyring = keyring
        self.config = config
        self._lock = lock
        self._stopping = asyncio.Event()
        self._wake = asyncio.Event()  # a stop, or a nudge: a checkpoint was just requested
        self._loop: asyncio.AbstractEventLoop | None = None
        self.health = Health("ledger")
        self.active = False
        self._requested = False
        self._grown = True  # after a start, the next checkpoint covers whatever came before
        self._last_checkpoint = time.monotonic()  # the first one an interval after the start

    def step(self, *, force: bool = False) -> StoredCheckpoint | None:
        """Fold in what was committed when it began; sign a checkpoint if one is due."""
        self._fold_committed()
        due = time.monotonic() - self._last_checkpoint >= self.config.checkpoint_interval
        if force or self._requested or (self._grown and due):
            signed = self._checkpoint()
            if signed is not None:  # its own event folded in now: listed without a next step
                self._fold_committed()
            return signed
        return None

    def _fold_committed(self) -> None:
        """Fold batches until one comes back short: it held all that was committed then."""
        # Not until nothing is left: under steady load that never came, and every batch
        # rewrites the open tiles (8 KiB rows); bench.ledger_bench's on/off went 0.84 -> 0.94.
        while self._integrate() >= self.builder.batch:
            pass

    def _integrate(self) -> int:
        rows = self.builder.peek()
        recorded = []
        for row in rows:
            topic = row[2]
            if topic == SIGNED_TOPIC:
                recorded.append(_stored(self._keyring.checkpoint_event(row[0]), row[0]))
            else:
                self._grown = True
                if topic == REQUESTED_TOPIC:
                    self._requested = True
        return self.builder.integrate(recorded, rows)

    def _checkpoint(self) -> StoredCheckpoint | None:
        last = self._tables.latest_checkpoint()
        size = self.builder.state.size
        self._requested = False
        if size == 0 or (last is not None and last.size >= size):
            return None

        def nodes(level: int, index: int) -> bytes:
            return node_from_tiles(level, index, self._tables.tile)

        root = self.builder.root()
        proof = consistency_proof(last.size, size, nodes) if last is not None else []
        # tlog-checkpoint: "A log MUST not sign any checkpoint which is inconsistent with any
        # checkpoint it previously signed."
        if last is not None and not verify_consistency(last.size, size, last.root, root, proof):
            raise TreeTampered(
                f"the stored tree does not extend the checkpoint at size {last.size}: "
                "refusing to sign; run `keyledger ledger verify`"
            )
        key = self._keyring.current(self.config.origin)
        signer = self._keyring.signer(key)
        note = sign_note(Checkpoint(key.name, size, root).body(), signer.key, signer.sign)
        now = self._keyring.now()
        checkpoint = LedgerCheckpoint(
            origin=key.name,
            size=size,
            root=base64.b64encode(root).decode(),
            note=note,
            key_id=key.key_id,
            previous_size=last.size if last is not None else 0,
            consistency=[base64.b64encode(p).decode() for p in proof],
            at=now,
        )
        self._keyring.record(checkpoint)
        self._grown = False
        self._last_checkpoint = time.monotonic()
        log.info("ledger checkpoint signed at size %d", size)
        return StoredCheckpoint(size, root, note, self.builder.state.position, now.isoformat())

    async def run(self) -> None:
        """Hold the builder's lock and keep the tree current; returns after `stop()`."""
        self._loop = asyncio.get_running_loop()
        while not self._stopping.is_set():
            try:
                await self._while_held()
            except Exception as exc:  # the store or the lock's connection: start over
                if self._stopping.is_set():
                    break  # a failure while stopping (the database went first) is no news
                self.health.failed(exc)
                await self._sleep(RETRY_AFTER)

    async def _while_held(self) -> None:
        lock = self._lock()
        held = await asyncio.to_thread(lock.__enter__)
        try:
            self.active = held
            if not held:
                await self._sleep(self.config.standby_interval)
                return
            await asyncio.to_thread(self.builder.load)
            while not self._stopping.is_set():
                self._wake.clear()
                await asyncio.to_thread(self.step)
                self.health.succeeded()
                await self._sleep(self.config.interval)
        finally:
            self.active = False
            await asyncio.to_thread(lock.__exit__, None, None, None)

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), seconds)

    def nudge(self) -> None:
        """Step now rather than at the next interval (a checkpoint request was recorded in
        this process); safe from any thread. A builder in another process still finds the
        request at its next step."""
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._wake.set)

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()


def _stored(event: LedgerCheckpoint.Signed, position: int) -> StoredCheckpoint:
    return StoredCheckpoint(
        event.size, base64.b64decode(event.root), event.note, position, event.at.isoformat()
    )
