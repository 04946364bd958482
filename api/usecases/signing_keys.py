"""The server's signing keys as events: first start, rotation, and each process's key ring.

Every process keeps a `KeyRing` that follows the `SigningKeys` aggregate (a poll by its id,
every follow interval), so a key rotated through any replica is known everywhere long before
it starts signing. Admins list and rotate keys through the admin API with their own scopes;
the server seals the new key with the installation's key-encryption key, which never leaves
it. The keeper also rotates on schedule, as the installation itself; replicas racing to do
so conflict on the aggregate's version and exactly one wins.

A key this process cannot open (sealed under another key-encryption key, or damaged) joins
the ring by the public JWK its event keeps unsealed: it stays published and verifies the
tokens it signed. Only the key whose turn it is to sign must open: else a server refuses to
start, and a running one reports it at `/readyz`.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from eventsourcing.persistence import IntegrityError

from adapters.event_store import Ledger
from adapters.key_vault import KeyVault, KeyVaultError
from adapters.log_changes import LogChanges, next_turn
from adapters.signing import (
    KeyRing,
    NoSigningKey,
    RingEntry,
    SigningKey,
    UnsupportedAlgorithm,
    VerificationKey,
    generate_key,
    key_files,
)
from api.usecases.ports import Clock
from domain.admin_scopes import Admin, Permission
from domain.installation import KEK_VARIABLE
from domain.signing_keys import (
    MAX_PREPUBLICATION,
    InvalidKeyTurn,
    KeyRecord,
    SigningKeyRejected,
    SigningKeys,
)
from projections.follower import Health

log = logging.getLogger("keyledger.keys")
# The first key and the scheduled rotations: the installation acting on its own keys.
INSTALLATION = Admin.installation("keyledger")


class SigningKeyUnavailable(KeyVaultError):
    """The key whose turn it is to sign cannot be opened: this process may not serve."""

    def __init__(self, kid: str) -> None:
        super().__init__(
            f"signing key {kid} signs now but cannot be opened with this installation's "
            f"{KEK_VARIABLE} (or KEYLEDGER_KEYS_DIR/key-encryption-key): another "
            "key-encryption key sealed it, or its sealed copy is damaged; not starting"
        )
        self.kid = kid


def key_row(record: KeyRecord, now: datetime) -> dict[str, Any]:
    """One key as the admin API and its callers list it."""
    return {
        "kid": record.kid,
        "alg": record.alg,
        "status": record.status(now),
        "generated_at": record.generated_at.isoformat(),
        "activates_at": record.activates_at.isoformat(),
        "retires_at": record.retires_at.isoformat() if record.retires_at else None,
        "unpublished_at": record.unpublished_at.isoformat() if record.unpublished_at else None,
    }


class SigningKeyAdmin:
    """Commands and queries on the signing keys, for `serve`, the keeper and the admin API."""

    def __init__(self, ledger: Ledger, vault: KeyVault, clock: Clock, alg: str) -> None:
        self._ledger, self._vault, self._clock, self._alg = ledger, vault, clock, alg
        # Each key as this process knows it, by kid; None: not even its public half is usable.
        self._known: dict[str, VerificationKey | None] = {}

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
        actor: str = INSTALLATION.actor,
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
        self._known[key.kid] = key

    def list_keys(self, *, by: Admin) -> list[dict[str, Any]]:
        """Every key with its status and its turn, oldest first."""
        by.require(Permission.READ)
        keys = self._ledger.get_signing_keys()
        now = self._clock.now()
        return [key_row(k, now) for k in (keys.keys if keys else [])]

    def rotate(self, *, delay: timedelta, by: Admin, reason: str | None = None) -> KeyRecord:
        """A new key, published now and signing after `delay`; the current one retires then."""
        by.require(Permission.MANAGE_KEYS)
        if not timedelta(0) <= delay <= MAX_PREPUBLICATION:  # checked first: `now + delay`
            raise InvalidKeyTurn(  # of a nine-digit number of days would overflow
                f"the pre-publication delay must be 0 seconds to {MAX_PREPUBLICATION.days} days"
            )
        keys = self._ledger.get_signing_keys()
        if keys is None:
            raise SigningKeyRejected("no signing keys yet: start the server once")
        key = generate_key(self._alg)
        now = self._clock.now()
        self._add(keys, key, now, now + delay, actor=by.actor, reason=reason)
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
            return self.rotate(
                delay=lead, by=INSTALLATION, reason=f"scheduled: every {every.days} days"
            )
        except SigningKeyRejected:
            return None  # another replica rotated first

    def check_signer(self, keys: SigningKeys) -> None:
        """Refuse (`SigningKeyUnavailable`) when the key that signs now cannot be opened."""
        active = keys.active_at(self._clock.now())
        if active is not None and not isinstance(self._key(active), SigningKey):
            raise SigningKeyUnavailable(active.kid)

    def entries(self, keys: SigningKeys) -> list[RingEntry]:
        """The ring of these keys, each opened once per process: one that cannot be opened
        takes part by its public half, one without a usable public half not at all."""
        entries = []
        for record in keys.keys:
            key = self._key(record)
            if key is not None:
                turn = (record.activates_at, record.retires_at, record.unpublished_at)
                entries.append(RingEntry(*turn, key=key))
        return entries

    def _key(self, record: KeyRecord) -> VerificationKey | None:
        """The key of `record`, tried once per process: a key that cannot be opened now
        never opens later (the key-encryption key is fixed), so it is noted, not retried."""
        if record.kid in self._known:
            return self._known[record.kid]
        key: VerificationKey | None
        try:
            key = SigningKey.from_private_key(
                self._vault.open(record.kid, record.sealed_private_key)
            )
        except KeyVaultError as exc:
            key = _public_half(record, exc)
        self._known[record.kid] = key
        return key


def _public_half(record: KeyRecord, sealed: KeyVaultError) -> VerificationKey | None:
    try:
        key = VerificationKey.from_jwk(record.public_jwk)
    except UnsupportedAlgorithm as exc:
        log.error("%s, and its public JWK is unusable (%s): it is left out", sealed, exc)
        return None
    log.warning("%s; only its public JWK is used here, to verify the tokens it signed", sealed)
    return key


class SigningKeysKeeper:
    """Keeps a process's ring in step with the aggregate and rotates on schedule."""

    def __init__(
        self,
        ledger: Ledger,
        admin: SigningKeyAdmin,
        ring: KeyRing,
        clock: Clock,
        *,
        interval: float,
        rotate_every: timedelta | None,
        lead: timedelta,
        check_every: float = 60.0,
        changes: LogChanges | None = None,
    ) -> None:
        self._changes = changes
        self._ledger, self.admin, self.ring, self._clock = ledger, admin, ring, clock
        self._interval, self._check_every = interval, check_every
        self._rotate_every, self._lead = rotate_every, lead
        self._version = 0
        self._lock = threading.Lock()  # the keeper and an admin request may both catch up
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.health = Health("signing-keys follower")
        self.signer_health = Health("signing key")

    def load(self, keys: SigningKeys) -> None:
        self.ring.replace(self.admin.entries(keys))
        self._version = keys.version

    def catch_up(self) -> bool:
        """Fold any new key events into the ring; True when something changed."""
        with self._lock:  # else a slower, older read could replace a newer ring
            if not self._ledger.signing_key_events(self._version):
                return False
            keys = self._ledger.get_signing_keys()
            assert keys is not None
            self.load(keys)
            return True

    def check_rotation(self) -> None:
        if self._rotate_every is not None and self.admin.rotate_if_due(
            self._rotate_every, self._lead
        ):
            log.info("signing key rotated on schedule")
            self.catch_up()

    def rotation_clock(self) -> tuple[float, float | None] | None:
        """For the metrics: how long the current key has signed (seconds), and until the
        next one takes over (its scheduled start, else the rotation schedule; None when
        neither); None while no key signs."""
        now = self._clock.now()
        entry = self.ring.signing_entry(now)
        if entry is None:
            return None
        hand_over = entry.retires_at
        if hand_over is None and self._rotate_every is not None:
            hand_over = entry.activates_at + self._rotate_every
        until = None if hand_over is None else (hand_over - now).total_seconds()
        return (now - entry.activates_at).total_seconds(), until

    def check_signer(self) -> None:
        """Whether the key whose turn it is can sign here (a key that could not be opened
        may come to its turn): `/readyz` names it while it cannot."""
        try:
            self.ring.active_at(self._clock.now())
        except NoSigningKey as exc:
            self.signer_health.failed(exc)
        else:
            self.signer_health.succeeded()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="signing-keys", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        checked: float | None = None  # check the schedule at once on start
        while True:
            seen = self._changes.generation if self._changes is not None else 0
            try:
                self.catch_up()
                now = time.monotonic()
                if checked is None or now - checked >= self._check_every:
                    checked = now
                    self.check_rotation()
            except Exception as exc:
                self.health.failed(exc)
                seen = -1  # retried at the next interval, not at the next change
            else:
                self.health.succeeded()
            self.check_signer()
            if next_turn(self._stop, self._interval, self._changes, seen):
                return

    def stop(self) -> None:
        self._stop.set()
        if self._changes is not None:
            self._changes.report()  # wakes a turn waiting for a change: it sees the stop
        if self._thread is not None:
            self._thread.join(timeout=5)
