"""The ledger's checkpoint-signing keys, its signed checkpoints, and requests for one.

`LedgerKeys` holds every Ed25519 key the ledger has signed checkpoints with; the last one
signs. Private halves arrive sealed, as the token-signing keys' do. Each checkpoint is its own
aggregate, one per tree size (`uuid5` of the size), so two builders can never record two
different heads for the same size: the second write fails on the aggregate's id.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate, event

LEDGER_KEYS_ID = uuid5(NAMESPACE_URL, "urn:keyledger:ledger-keys")


def checkpoint_id(size: int) -> UUID:
    return uuid5(NAMESPACE_URL, f"urn:keyledger:ledger-checkpoint:{size}")


class LedgerKeyRejected(Exception):
    """A key the ledger cannot take (a name or key ID it has already)."""


@dataclass(frozen=True)
class LedgerKey:
    """One checkpoint-signing key: its signed-note name, key ID, public and sealed halves."""

    name: str
    key_id: str
    public_key: str
    sealed_private_key: str
    generated_at: datetime


class LedgerKeys(Aggregate):
    """Every checkpoint-signing key, oldest first; the id is fixed (`LEDGER_KEYS_ID`)."""

    class Started(Aggregate.Created):
        at: datetime

    class KeyGenerated(Aggregate.Event):
        """A new key signs every checkpoint from now on; earlier ones still verify theirs."""

        name: str
        key_id: str
        public_key: str
        sealed_private_key: str
        at: datetime
        actor: str
        reason: str | None

    @staticmethod
    def create_id(at: datetime) -> UUID:
        return LEDGER_KEYS_ID

    @event(Started)
    def __init__(self, at: datetime) -> None:
        self.keys: list[LedgerKey] = []

    @property
    def current(self) -> LedgerKey | None:
        return self.keys[-1] if self.keys else None

    def add_key(
        self,
        *,
        name: str,
        key_id: str,
        public_key: str,
        sealed_private_key: str,
        at: datetime,
        actor: str,
        reason: str | None = None,
    ) -> None:
        if any(k.key_id == key_id and k.name == name for k in self.keys):
            raise LedgerKeyRejected(f"the ledger has key {name}+{key_id} already")
        self._key_generated(
            name=name,
            key_id=key_id,
            public_key=public_key,
            sealed_private_key=sealed_private_key,
            at=at,
            actor=actor,
            reason=reason,
        )

    @event(KeyGenerated)
    def _key_generated(
        self,
        name: str,
        key_id: str,
        public_key: str,
        sealed_private_key: str,
        at: datetime,
        actor: str,
        reason: str | None,
    ) -> None:
        self.keys.append(LedgerKey(name, key_id, public_key, sealed_private_key, at))


class LedgerCheckpoint(Aggregate):
    """The signed head of the tree at one size, with the proof that it extends the last one."""

    class Signed(Aggregate.Created):
        """`note` is the C2SP checkpoint; `consistency` proves it extends `previous_size`."""

        origin: str
        size: int
        root: str
        note: str
        key_id: str
        previous_size: int
        consistency: list[str]
        at: datetime

    @staticmethod
    def create_id(
        origin: str,
        size: int,
        root: str,
        note: str,
        key_id: str,
        previous_size: int,
        consistency: list[str],
        at: datetime,
    ) -> UUID:
        return checkpoint_id(size)

    def __init__(
        self,
        origin: str,
        size: int,
        root: str,
        note: str,
        key_id: str,
        previous_size: int,
        consistency: list[str],
        at: datetime,
    ) -> None:
        self.size = size
        self.note = note


class CheckpointRequest(Aggregate):
    """An administrator asked for a checkpoint now, rather than at the next interval."""

    class Requested(Aggregate.Created):
        at: datetime
        actor: str
        reason: str | None

    def __init__(self, at: datetime, actor: str, reason: str | None) -> None:
        self.at = at
