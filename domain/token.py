"""The `IssuedToken` aggregate: one per access token, the durable fact that it was issued."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import NAMESPACE_URL, RFC_4122, UUID, uuid5

from eventsourcing.domain import Aggregate, event
from eventsourcing.utils import get_topic

_TOKEN_NAMESPACE = uuid5(NAMESPACE_URL, "urn:keyledger:token")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MILLISECOND = timedelta(milliseconds=1)


def new_jti(now: datetime, random: bytes) -> str:
    """A fresh token id: a UUIDv7 (RFC 9562 §5.7), `now` in milliseconds, then 74 bits of
    `random` (at least ten bytes), in its canonical text. Time-ordered, so the tokens' rows
    are appended to the end of the store's index rather than scattered through it."""
    if len(random) < 10:
        raise ValueError("a jti needs ten random bytes")
    millis = (now - _EPOCH) // _MILLISECOND
    if not 0 <= millis < 1 << 48:
        raise ValueError("a time a UUIDv7 cannot hold")
    rand = int.from_bytes(random[:10])
    value = (
        millis << 80
        | 7 << 76  # version
        | (rand >> 68 & 0xFFF) << 64  # rand_a: 12 bits
        | 0b10 << 62  # variant
        | rand & (1 << 62) - 1  # rand_b: 62 bits
    )
    return str(UUID(int=value))


def token_id(jti: str) -> UUID:
    """The aggregate id of the token with this `jti`: a duplicate `jti` cannot be stored twice.

    A jti this server made (`new_jti`) is its own id; any other (older tokens' UUIDv4, text)
    maps to a name-based UUIDv5, which can never equal a UUIDv7."""
    try:
        value = UUID(jti)
    except ValueError:
        return uuid5(_TOKEN_NAMESPACE, jti)
    if value.version == 7 and value.variant == RFC_4122 and str(value) == jti:
        return value
    return uuid5(_TOKEN_NAMESPACE, jti)


class IssuedToken(Aggregate):
    """An access token that was issued; created only through `Issued`."""

    @staticmethod
    def create_id(jti: str) -> UUID:
        return token_id(jti)

    class Issued(Aggregate.Created):
        """An access token was issued: who got it, for what, until when, signed by which key."""

        jti: str
        client_id: str
        scopes: list[str]
        audience: list[str]
        issued_at: datetime
        expires_at: datetime
        kid: str
        client_version: int
        secret_generation: int
        auth_method: str
        source_ip: str | None = None  # where the request came from (None in older events)

    @event(Issued)
    def __init__(
        self,
        jti: str,
        client_id: str,
        scopes: list[str],
        audience: list[str],
        issued_at: datetime,
        expires_at: datetime,
        kid: str,
        client_version: int,
        secret_generation: int,
        auth_method: str,
        source_ip: str | None = None,
    ) -> None:
        self.jti = jti
        self.client_id = client_id
        self.scopes = list(scopes)
        self.audience = list(audience)
        self.issued_at = issued_at
        self.expires_at = expires_at
        self.kid = kid
        self.client_version = client_version
        self.secret_generation = secret_generation
        self.auth_method = auth_method
        self.source_ip = source_ip
        self.revoked_at: datetime | None = None

    class Revoked(Aggregate.Event):
        """The token was revoked before its expiry (RFC 7009), by `actor`, for `reason`."""

        at: datetime
        actor: str
        reason: str | None
        client_id: str
        expires_at: datetime

    def revoke(self, *, now: datetime, actor: str, reason: str | None) -> bool:
        """Revoke once; False (and no event) when already revoked or expired."""
        if self.revoked_at is not None or now >= self.expires_at:
            return False
        self._revoked(
            at=now, actor=actor, reason=reason, client_id=self.client_id, expires_at=self.expires_at
        )
        return True

    @event(Revoked)
    def _revoked(
        self, at: datetime, actor: str, reason: str | None, client_id: str, expires_at: datetime
    ) -> None:
        self.revoked_at = at

    @classmethod
    def issue(
        cls,
        *,
        jti: str,
        client_id: str,
        scopes: list[str],
        audience: list[str],
        issued_at: datetime,
        expires_at: datetime,
        kid: str,
        client_version: int,
        secret_generation: int,
        auth_method: str,
        source_ip: str | None = None,
    ) -> IssuedToken.Issued:
        """The `Issued` event that creates a token, without building the aggregate object.

        The token endpoint only stores this event; materialising the aggregate first would
        cost about as much as signing the token. Replaying the event gives the aggregate.
        """
        fields: dict[str, Any] = {
            "originator_topic": _TOKEN_TOPIC,
            "originator_id": token_id(jti),
            "originator_version": cls.INITIAL_VERSION,
            "timestamp": cls.Issued.create_timestamp(),
            "jti": jti,
            "client_id": client_id,
            "scopes": scopes,
            "audience": audience,
            "issued_at": issued_at,
            "expires_at": expires_at,
            "kid": kid,
            "client_version": client_version,
            "secret_generation": secret_generation,
            "auth_method": auth_method,
            "source_ip": source_ip,
        }
        return cls.Issued(**fields)


_TOKEN_TOPIC = get_topic(IssuedToken)
