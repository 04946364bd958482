"""`SigningKeys`: the server's own token-signing keys, their publication and their turns.

One aggregate holds every key. A key is published in the JWK Set from the moment it is
generated and signs from its activation time, which lies a pre-publication delay ahead, so
resource servers' JWKS caches learn it before the first token it signs. Activation is a time
carried by the event, not a later write: every replica switches at the same instant. The key
it takes over from is retired at that instant and stays published until every token it can
have signed has expired. Private keys arrive here sealed (encrypted by the caller); the
domain never sees key material in the clear.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate, event

from domain.client_settings import MAX_TOKEN_TTL

SIGNING_KEYS_ID = uuid5(NAMESPACE_URL, "urn:keyledger:signing-keys")
# The longest a token can live: a retired key is published this long after it stops signing.
TOKEN_LIFETIME_BOUND = timedelta(seconds=MAX_TOKEN_TTL)
# The furthest ahead a new key may be set to sign: a JWKS cache needs minutes, not months.
MAX_PREPUBLICATION = timedelta(days=30)


class SigningKeyRejected(Exception):
    """A key command the current keys do not allow (a pending rotation, a duplicate kid)."""


class InvalidKeyTurn(SigningKeyRejected):
    """A turn no state of the keys allows: signing from the past, or too far ahead."""


@dataclass(frozen=True)
class KeyTurn:
    """A key's turn: it signs from `activates_at` until `retires_at`, and is published
    until `unpublished_at` (None: open-ended)."""

    activates_at: datetime
    retires_at: datetime | None = None
    unpublished_at: datetime | None = None

    def signs_at(self, t: datetime) -> bool:
        return self.activates_at <= t and (self.retires_at is None or t < self.retires_at)

    def published_at(self, t: datetime) -> bool:
        return self.unpublished_at is None or t < self.unpublished_at


@dataclass(frozen=True, kw_only=True)
class KeyRecord(KeyTurn):
    """One signing key as the aggregate knows it: public half, sealed private half, its turn."""

    kid: str
    alg: str
    public_jwk: dict[str, Any]
    sealed_private_key: str
    generated_at: datetime

    def status(self, t: datetime) -> str:
        if not self.published_at(t):
            return "unpublished"
        if self.retires_at is not None and self.retires_at <= t:
            return "retired"
        return "active" if self.activates_at <= t else "pending"


class SigningKeys(Aggregate):
    """Every token-signing key this server has had; the id is fixed (`SIGNING_KEYS_ID`)."""

    class Started(Aggregate.Created):
        at: datetime

    class KeyGenerated(Aggregate.Event):
        """A key was added: published now, signing from `activates_at`."""

        kid: str
        alg: str
        public_jwk: dict[str, Any]
        sealed_private_key: str
        activates_at: datetime
        imported: bool
        at: datetime
        actor: str
        reason: str | None

    class KeyRetired(Aggregate.Event):
        """A key stops signing at `retires_at` and leaves the JWK Set at `unpublished_at`."""

        kid: str
        retires_at: datetime
        unpublished_at: datetime
        at: datetime
        actor: str
        reason: str | None

    @staticmethod
    def create_id(at: datetime) -> UUID:
        return SIGNING_KEYS_ID

    @event(Started)
    def __init__(self, at: datetime) -> None:
        self.keys: list[KeyRecord] = []

    def active_at(self, t: datetime) -> KeyRecord | None:
        """The key that signs at `t`: the latest activated one not yet retired."""
        signing = [k for k in self.keys if k.signs_at(t)]
        return max(signing, key=lambda k: k.activates_at) if signing else None

    def pending_at(self, t: datetime) -> KeyRecord | None:
        pending = [k for k in self.keys if k.activates_at > t]
        return pending[0] if pending else None

    def add_key(
        self,
        *,
        kid: str,
        alg: str,
        public_jwk: dict[str, Any],
        sealed_private_key: str,
        activates_at: datetime,
        now: datetime,
        actor: str,
        reason: str | None = None,
        imported: bool = False,
    ) -> None:
        """Publish a new key that signs from `activates_at`; the key it follows retires then."""
        if any(k.kid == kid for k in self.keys):
            raise SigningKeyRejected(f"a key with kid {kid} exists already")
        if activates_at < now:
            raise InvalidKeyTurn("a new key cannot start signing in the past")
        if activates_at > now + MAX_PREPUBLICATION:
            raise InvalidKeyTurn(
                f"a new key must start signing within {MAX_PREPUBLICATION.days} days"
            )
        pending = self.pending_at(now)
        if pending is not None:
            raise SigningKeyRejected(
                f"key {pending.kid} is already waiting to sign from "
                f"{pending.activates_at.isoformat()}"
            )
        predecessor = self.active_at(activates_at)
        self._key_generated(
            kid=kid,
            alg=alg,
            public_jwk=dict(public_jwk),
            sealed_private_key=sealed_private_key,
            activates_at=activates_at,
            imported=imported,
            at=now,
            actor=actor,
            reason=reason,
        )
        if predecessor is not None:
            self.retire(
                kid=predecessor.kid,
                at=activates_at,
                now=now,
                actor=actor,
                reason=f"{kid} takes over",
            )

    @event(KeyGenerated)
    def _key_generated(
        self,
        kid: str,
        alg: str,
        public_jwk: dict[str, Any],
        sealed_private_key: str,
        activates_at: datetime,
        imported: bool,
        at: datetime,
        actor: str,
        reason: str | None,
    ) -> None:
        self.keys.append(
            KeyRecord(
                activates_at=activates_at,
                kid=kid,
                alg=alg,
                public_jwk=public_jwk,
                sealed_private_key=sealed_private_key,
                generated_at=at,
            )
        )

    def retire(
        self, *, kid: str, at: datetime, now: datetime, actor: str, reason: str | None
    ) -> None:
        """Stop signing with `kid` at `at`; publish it until its last token can have expired."""
        found = [k for k in self.keys if k.kid == kid]
        if not found:
            raise SigningKeyRejected(f"no signing key {kid}")
        if found[0].retires_at is not None:
            raise SigningKeyRejected(f"key {kid} is retired already")
        self._key_retired(
            kid=kid,
            retires_at=at,
            unpublished_at=at + TOKEN_LIFETIME_BOUND,
            at=now,
            actor=actor,
            reason=reason,
        )

    @event(KeyRetired)
    def _key_retired(
        self,
        kid: str,
        retires_at: datetime,
        unpublished_at: datetime,
        at: datetime,
        actor: str,
        reason: str | None,
    ) -> None:
        self.keys = [
            replace(k, retires_at=retires_at, unpublished_at=unpublished_at) if k.kid == kid else k
            for k in self.keys
        ]

    def rotation_due(self, now: datetime, every: timedelta, lead: timedelta) -> bool:
        """True when the signing key turns `every` old within `lead` and none is pending."""
        active = self.active_at(now)
        if self.pending_at(now) is not None:
            return False
        return active is None or now + lead >= active.activates_at + every
