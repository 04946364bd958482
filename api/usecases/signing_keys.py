"""The server's signing keys as events: first start, rotation, and each process's key ring.

Every process keeps a `KeyRing` that follows the `SigningKeys` aggregate (a poll by its id,
every follow interval), so a key rotated through any replica or the CLI is known everywhere
long before it starts signing. The keeper also rotates on schedule; replicas racing to do so
conflict on the aggregate's version and exactly one wins.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from eventsourcing.persistence import IntegrityError

from adapters.event_store import Ledger
from adapters.key_vault import KeyVault
from adapters.signing import KeyRing, RingEntry, SigningKey, generate_key, key_files
from api.usecases.ports import Clock
from domain.signing_keys import KeyRecord, SigningKeyRejected, SigningKeys
from projections.follower import Health

log = logging.getLogger("keyledger.keys")
ACTOR = "keyledger"


class SigningKeyAdmin:
    """Commands and queries on the signing keys, for `serve`, the keeper and the CLI."""

    def __init__(self, ledger: Ledger, vault: KeyVault, clock: Clock, alg: str) -> None:
        self._ledger, self._vault, self._clock, self._alg = ledger, vault, clock, alg
        self._opened: dict[str, SigningKey] = {}

    def ensure(self, keys_dir: Path) -> SigningKeys:
        """The keys; on the very first start, the key files an earlier version made are
        imported (so its tokens keep verifying), else a first key is generated."""
        keys = self._ledger.get_signing_keys()
        if keys is not None:
            return keys
        now = self._clock.now()
        keys = SigningKeys(at=now)
        found = key_files(keys_dir, self._alg) if keys_dir.exists() else []
        for key in found or [generate_key(self._alg)]:
            self._add(keys, key, now, now, imported=bool(found), reason="first start")
        with contextlib.suppress(IntegrityError):  # another process made them first
            self._ledger.save(keys)
        stored = self._ledger.get_signing_keys()
        assert stored is not None
        return stored

    def _add(
        self,
        keys: SigningKeys,
        key: SigningKey,
        now: datetime,
        activates_at: datetime,
        *,
        imported: bool = False,
        actor: str = ACTOR,
        reason: str | None = None,
    ) -> None:
        keys.add_key(
            kid=key.kid,
            alg=key.alg,
            public_jwk=key.public_jwk,
            sealed_private_key=self._vault.seal(key.kid, key.private_key),
            activates_at=activates_at,
            now=now,
            actor=actor,
            reason=reason,
            imported=imported,
        )
        self._opened[key.kid] = key

    def rotate(
        self, *, delay: timedelta, actor: str = ACTOR, reason: str | None = None
    ) -> KeyRecord:
        """A new key, published now and signing after `delay`; the current one retires then."""
        keys = self._ledger.get_signing_keys()
        if keys is None:
            raise SigningKeyRejected("no signing keys yet: start the server once")
        if delay < timedelta(0):
            raise SigningKeyRejected("the pre-publication delay cannot be negative")
        key = generate_key(self._alg)
        now = self._clock.now()
        self._add(keys, key, now, now + delay, actor=actor, reason=reason)
        try:
            self._ledger.save(keys)
        except IntegrityError:
            raise SigningKeyRejected("the keys changed concurrently; try again") from None
        return next(k for k in keys.keys if k.kid == key.kid)

    def rotate_if_due(self, every: timedelta, lead: timedelta) -> KeyRecord | None:
        keys = self._ledger.get_signing_keys()
        if keys is None or not keys.rotation_due(self._clock.now(), every, lead):
            return None
        try:
            return self.rotate(delay=lead, reason=f"scheduled: every {every.days} days")
        except SigningKeyRejected:
            return None  # another replica rotated first

    def entries(self, keys: SigningKeys) -> list[RingEntry]:
        """The ring of these keys, each private key opened once per process."""
        entries = []
        for record in keys.keys:
            key = self._opened.get(record.kid)
            if key is None:
                key = SigningKey.from_private_key(
                    self._vault.open(record.kid, record.sealed_private_key)
                )
                self._opened[record.kid] = key
            entries.append(
                RingEntry(record.activates_at, record.retires_at, record.unpublished_at, key=key)
            )
        return entries

    def listing(self) -> list[dict[str, Any]]:
        keys = self._ledger.get_signing_keys()
        now = self._clock.now()
        return [
            {
                "kid": k.kid,
                "alg": k.alg,
                "status": k.status(now),
                "generated_at": k.generated_at.isoformat(),
                "activates_at": k.activates_at.isoformat(),
                "retires_at": k.retires_at.isoformat() if k.retires_at else None,
                "unpublished_at": k.unpublished_at.isoformat() if k.unpublished_at else None,
            }
            for k in (keys.keys if keys else [])
        ]


class SigningKeysKeeper:
    """Keeps a process's ring in step with the aggregate and rotates on schedule."""

    def __init__(
        self,
        ledger: Ledger,
        admin: SigningKeyAdmin,
        ring: KeyRing,
        *,
        interval: float,
        rotate_every: timedelta | None,
        lead: timedelta,
        check_every: float = 60.0,
    ) -> None:
        self._ledger, self._admin, self.ring = ledger, admin, ring
        self._interval, self._check_every = interval, check_every
        self._rotate_every, self._lead = rotate_every, lead
        self._version = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.health = Health("signing-keys follower")

    def load(self, keys: SigningKeys) -> None:
        self.ring.replace(self._admin.entries(keys))
        self._version = keys.version

    def catch_up(self) -> bool:
        """Fold any new key events into the ring; True when something changed."""
        if not self._ledger.signing_key_events(self._version):
            return False
        keys = self._ledger.get_signing_keys()
        assert keys is not None
        self.load(keys)
        return True

    def check_rotation(self) -> None:
        if self._rotate_every is not None and self._admin.rotate_if_due(
            self._rotate_every, self._lead
        ):
            log.info("signing key rotated on schedule")
            self.catch_up()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="signing-keys", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        waited = self._check_every  # check the schedule at once on start
        while not self._stop.is_set():
            try:
                self.catch_up()
                if waited >= self._check_every:
                    waited = 0.0
                    self.check_rotation()
            except Exception as exc:
                self.health.failed(exc)
            else:
                self.health.succeeded()
            self._stop.wait(self._interval)
            waited += self._interval

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
