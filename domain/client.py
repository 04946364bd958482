"""The `Client` aggregate: a machine that may exchange its credentials for tokens.

Every command records who did it (`actor`) and, optionally, why (`reason`). Commands compute
everything new (hashes, times, generations) before the event, so replay is deterministic.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.client_keys import public_jwks
from domain.client_settings import ClientSettings, InvalidClientSettings

CLIENT_SECRET_BASIC = "client_secret_basic"  # noqa: S105 - a method name, not a secret
PRIVATE_KEY_JWT = "private_key_jwt"
# RFC 7591 §2 names. A secret client may present its secret either way (§2.3.1 basic or post).
AUTH_METHODS = (CLIENT_SECRET_BASIC, PRIVATE_KEY_JWT)
MAX_GRACE = timedelta(days=30)
MAX_QUOTA = 100_000_000
DEFAULT_GRACE = timedelta(hours=24)
SUSPENSION_CUT_OFF = "suspended"  # the reason prefix of the cut-off a suspension records


class ClientCommandRejected(Exception):
    """A command the client's current state does not allow (an HTTP 409)."""


@dataclass(frozen=True)
class SecretSlot:
    """One live secret of a client: its generation and keyed hash, never the secret."""

    generation: int
    secret_hash: str
    expires_at: datetime | None

    def is_live(self, now: datetime) -> bool:
        return self.expires_at is None or now < self.expires_at


class Client(Aggregate):
    """A registered machine client; `client_id` is the aggregate id as a string."""

    class Registered(Aggregate.Created):
        """A client was registered with its settings and its credential: a first secret (as a
        keyed hash) or, for `private_key_jwt`, its public keys. Events stored before keys
        existed have neither new field and read the defaults."""

        name: str
        allowed_scopes: list[str]
        default_scopes: list[str]
        token_ttl: int
        audiences: list[str]
        secret_hash: str | None
        registered_at: datetime
        actor: str
        reason: str | None
        auth_method: str = CLIENT_SECRET_BASIC
        jwks: list[dict[str, Any]] | None = None
        default_audience: str | None = None  # the `aud` when a request names no resource

    class Changed(Aggregate.Event):
        """Base of every later client event: when, by whom, why."""

        at: datetime
        actor: str
        reason: str | None

    class SecretRotated(Changed):
        """A new secret became current; the previous one stays valid until its expiry."""

        generation: int
        secret_hash: str
        previous_generation: int
        previous_expires_at: datetime

    class KeysReplaced(Changed):
        """A `private_key_jwt` client's public keys were replaced as a whole."""

        jwks: list[dict[str, Any]]

    class PreviousSecretRevoked(Changed):
        """The rotated-out secret stopped working before its grace period ended."""

        generation: int

    class Suspended(Changed):
        """The client may not authenticate until reactivated."""

    class Reactivated(Changed):
        """A suspended client may authenticate again."""

    class ScopesChanged(Changed):
        allowed_scopes: list[str]
        default_scopes: list[str]

    class TokenLifetimeChanged(Changed):
        token_ttl: int

    class QuotasChanged(Changed):
        """Issuance quotas: most tokens per minute and per day (None: no limit)."""

        tokens_per_minute: int | None
        tokens_per_day: int | None

    class AudiencesChanged(Changed):
        audiences: list[str]
        default_audience: str | None = None

    class Renamed(Changed):
        name: str

    class TokensRevoked(Changed):
        """Tokens issued before `cutoff` (only those of `secret_generation`, if set) are void."""

        cutoff: datetime
        secret_generation: int | None

    class Deleted(Changed):
        """Decommissioned: the client never authenticates again; its id is never reused."""

    @event(Registered)
    def __init__(
        self,
        id: UUID,
        name: str,
        allowed_scopes: list[str],
        default_scopes: list[str],
        token_ttl: int,
        audiences: list[str],
        secret_hash: str | None,
        registered_at: datetime,
        actor: str,
        reason: str | None,
        auth_method: str = CLIENT_SECRET_BASIC,
        jwks: list[dict[str, Any]] | None = None,
        default_audience: str | None = None,
    ) -> None:
        self.default_audience = default_audience
        self.name = name
        self.allowed_scopes = list(allowed_scopes)
        self.default_scopes = list(default_scopes)
        self.token_ttl = token_ttl
        self.audiences = list(audiences)
        self.auth_method = auth_method
        self.jwks = list(jwks or [])
        self.secrets = [] if secret_hash is None else [SecretSlot(1, secret_hash, None)]
        self.status = "active"
        self.registered_at = registered_at
        self.tokens_per_minute: int | None = None
        self.tokens_per_day: int | None = None

    @classmethod
    def register(
        cls,
        *,
        client_id: UUID,
        settings: ClientSettings,
        secret_hash: str | None,
        now: datetime,
        actor: str,
        reason: str | None = None,
        jwks: Any = None,
    ) -> Client:
        """Register a client whose id, secret hash (or public keys) and time the caller made.

        RFC 7591 §2: a client has one `token_endpoint_auth_method`; a `private_key_jwt`
        client has keys and no secret, a secret client no keys.
        """
        if (secret_hash is None) == (jwks is None):
            raise InvalidClientSettings("a client has either a secret or public keys (jwks)")
        return cls(
            id=client_id,
            name=settings.name,
            allowed_scopes=list(settings.allowed_scopes),
            default_scopes=list(settings.default_scopes),
            token_ttl=settings.token_ttl,
            audiences=list(settings.audiences),
            secret_hash=secret_hash,
            registered_at=now,
            actor=actor,
            reason=reason,
            auth_method=CLIENT_SECRET_BASIC if jwks is None else PRIVATE_KEY_JWT,
            jwks=None if jwks is None else public_jwks(jwks),
            default_audience=settings.default_audience,
        )

    @property
    def client_id(self) -> str:
        return str(self.id)

    @property
    def secret_generation(self) -> int:
        """The current secret's generation; 0 for a client without secrets."""
        return self.secrets[0].generation if self.secrets else 0

    def settings(self) -> ClientSettings:
        return ClientSettings(
            name=self.name,
            allowed_scopes=tuple(self.allowed_scopes),
            default_scopes=tuple(self.default_scopes),
            token_ttl=self.token_ttl,
            audiences=tuple(self.audiences),
            default_audience=self.default_audience,
        )

    def _require_not_deleted(self) -> None:
        if self.status == "deleted":
            raise ClientCommandRejected("the client is deleted")

    # Commands: validate, compute, then record the event.

    def _require_method(self, method: str) -> None:
        if self.auth_method != method:
            raise ClientCommandRejected(f"the client authenticates with {self.auth_method}")

    def rotate_secret(
        self, *, secret_hash: str, now: datetime, grace: timedelta, actor: str, reason: str | None
    ) -> None:
        """Make a new secret current; the current one expires after `grace` (0 to 30 days)."""
        self._require_not_deleted()
        self._require_method(CLIENT_SECRET_BASIC)
        if not timedelta(0) <= grace <= MAX_GRACE:
            raise InvalidClientSettings("grace must be 0 seconds to 30 days")
        self._secret_rotated(
            generation=self.secret_generation + 1,
            secret_hash=secret_hash,
            previous_generation=self.secret_generation,
            previous_expires_at=now + grace,
            at=now,
            actor=actor,
            reason=reason,
        )

    @event(SecretRotated)
    def _secret_rotated(
        self,
        generation: int,
        secret_hash: str,
        previous_generation: int,
        previous_expires_at: datetime,
        at: datetime,
        actor: str,
        reason: str | None,
    ) -> None:
        current = self.secrets[0]
        # At most two secrets live at once: an older one still in its grace period ends now.
        self.secrets = [
            SecretSlot(generation, secret_hash, None),
            SecretSlot(previous_generation, current.secret_hash, previous_expires_at),
        ]

    def replace_keys(self, *, jwks: Any, now: datetime, actor: str, reason: str | None) -> None:
        """Replace a `private_key_jwt` client's public keys (a new JWK Set, validated)."""
        self._require_not_deleted()
        self._require_method(PRIVATE_KEY_JWT)
        self._keys_replaced(jwks=public_jwks(jwks), at=now, actor=actor, reason=reason)

    @event(KeysReplaced)
    def _keys_replaced(
        self, jwks: list[dict[str, Any]], at: datetime, actor: str, reason: str | None
    ) -> None:
        self.jwks = list(jwks)

    def revoke_previous_secret(self, *, now: datetime, actor: str, reason: str | None) -> None:
        self._require_not_deleted()
        live = [s for s in self.secrets[1:] if s.is_live(now)]
        if not live:
            raise ClientCommandRejected("the client has no previous secret in its grace period")
        self._previous_secret_revoked(
            generation=live[0].generation, at=now, actor=actor, reason=reason
        )

    @event(PreviousSecretRevoked)
    def _previous_secret_revoked(
        self, generation: int, at: datetime, actor: str, reason: str | None
    ) -> None:
        self.secrets = [s for s in self.secrets if s.generation != generation]

    def suspend(self, *, now: datetime, actor: str, reason: str | None) -> None:
        """Refuse the client, and void every token it holds: a suspension usually answers a
        compromise, so reactivation must not bring those tokens back. The cut-off is its own
        event in the same save, so the history and every replay say the same."""
        self._require_not_deleted()
        if not reason or not reason.strip():
            raise InvalidClientSettings("suspending a client needs a reason")
        if self.status == "suspended":
            raise ClientCommandRejected("the client is already suspended")
        self._suspended(at=now, actor=actor, reason=reason)
        self._tokens_revoked(
            cutoff=now,
            secret_generation=None,
            at=now,
            actor=actor,
            reason=f"{SUSPENSION_CUT_OFF}: {reason}",
        )

    @event(Suspended)
    def _suspended(self, at: datetime, actor: str, reason: str | None) -> None:
        self.status = "suspended"

    def reactivate(self, *, now: datetime, actor: str, reason: str | None) -> None:
        self._require_not_deleted()
        if self.status != "suspended":
            raise ClientCommandRejected("the client is not suspended")
        self._reactivated(at=now, actor=actor, reason=reason)

    @event(Reactivated)
    def _reactivated(self, at: datetime, actor: str, reason: str | None) -> None:
        self.status = "active"

    def change_scopes(
        self,
        *,
        allowed_scopes: list[str],
        default_scopes: list[str] | None,
        now: datetime,
        actor: str,
        reason: str | None,
    ) -> None:
        """New allowed scopes; defaults omitted keep the old defaults that are still allowed."""
        self._require_not_deleted()
        if default_scopes is None:
            default_scopes = [s for s in self.default_scopes if s in set(allowed_scopes)]
        valid = ClientSettings.create(
            name=self.name,
            allowed_scopes=allowed_scopes,
            default_scopes=default_scopes,
            token_ttl=self.token_ttl,
            audiences=self.audiences,
        )
        self._scopes_changed(
            allowed_scopes=list(valid.allowed_scopes),
            default_scopes=list(valid.default_scopes),
            at=now,
            actor=actor,
            reason=reason,
        )

    @event(ScopesChanged)
    def _scopes_changed(
        self,
        allowed_scopes: list[str],
        default_scopes: list[str],
        at: datetime,
        actor: str,
        reason: str | None,
    ) -> None:
        self.allowed_scopes = list(allowed_scopes)
        self.default_scopes = list(default_scopes)

    def change_token_lifetime(
        self, *, token_ttl: int, now: datetime, actor: str, reason: str | None
    ) -> None:
        self._require_not_deleted()
        ClientSettings.create(
            name=self.name, allowed_scopes=self.allowed_scopes, token_ttl=token_ttl
        )
        self._token_lifetime_changed(token_ttl=token_ttl, at=now, actor=actor, reason=reason)

    @event(TokenLifetimeChanged)
    def _token_lifetime_changed(
        self, token_ttl: int, at: datetime, actor: str, reason: str | None
    ) -> None:
        self.token_ttl = token_ttl

    def change_quotas(
        self,
        *,
        tokens_per_minute: int | None,
        tokens_per_day: int | None,
        now: datetime,
        actor: str,
        reason: str | None,
    ) -> None:
        """Set both quotas at once (like Auth0's M2M quotas); None lifts a limit."""
        self._require_not_deleted()
        for name, value in (("per minute", tokens_per_minute), ("per day", tokens_per_day)):
            if value is not None and (isinstance(value, bool) or not 1 <= value <= MAX_QUOTA):
                raise InvalidClientSettings(f"a quota {name} must be 1 to {MAX_QUOTA} tokens")
        self._quotas_changed(
            tokens_per_minute=tokens_per_minute,
            tokens_per_day=tokens_per_day,
            at=now,
            actor=actor,
            reason=reason,
        )

    @event(QuotasChanged)
    def _quotas_changed(
        self,
        tokens_per_minute: int | None,
        tokens_per_day: int | None,
        at: datetime,
        actor: str,
        reason: str | None,
    ) -> None:
        self.tokens_per_minute = tokens_per_minute
        self.tokens_per_day = tokens_per_day

    def change_audiences(
        self,
        *,
        audiences: list[str],
        now: datetime,
        actor: str,
        reason: str | None,
        default_audience: str | None = None,
    ) -> None:
        """New allowed audiences; a default omitted keeps the old one if it stays allowed."""
        self._require_not_deleted()
        if default_audience is None and self.default_audience in audiences:
            default_audience = self.default_audience
        valid = ClientSettings.create(
            name=self.name,
            allowed_scopes=self.allowed_scopes,
            audiences=audiences,
            default_audience=default_audience,
        )
        self._audiences_changed(
            audiences=list(valid.audiences),
            default_audience=valid.default_audience,
            at=now,
            actor=actor,
            reason=reason,
        )

    @event(AudiencesChanged)
    def _audiences_changed(
        self,
        audiences: list[str],
        at: datetime,
        actor: str,
        reason: str | None,
        default_audience: str | None = None,
    ) -> None:
        self.audiences = list(audiences)
        self.default_audience = default_audience

    def rename(self, *, name: str, now: datetime, actor: str, reason: str | None) -> None:
        self._require_not_deleted()
        valid = ClientSettings.create(name=name, allowed_scopes=self.allowed_scopes)
        self._renamed(name=valid.name, at=now, actor=actor, reason=reason)

    @event(Renamed)
    def _renamed(self, name: str, at: datetime, actor: str, reason: str | None) -> None:
        self.name = name

    def revoke_tokens(
        self,
        *,
        cutoff: datetime | None = None,
        secret_generation: int | None,
        now: datetime,
        actor: str,
        reason: str | None,
    ) -> None:
        """Void tokens issued before `cutoff` (default and latest: now), or only one secret's."""
        self._require_not_deleted()
        cutoff = now if cutoff is None else cutoff
        if cutoff > now:
            raise InvalidClientSettings("the cut-off cannot be in the future")
        if secret_generation is not None and not 1 <= secret_generation <= self.secret_generation:
            raise InvalidClientSettings(f"the client has no secret generation {secret_generation}")
        self._tokens_revoked(
            cutoff=cutoff, secret_generation=secret_generation, at=now, actor=actor, reason=reason
        )

    @event(TokensRevoked)
    def _tokens_revoked(
        self,
        cutoff: datetime,
        secret_generation: int | None,
        at: datetime,
        actor: str,
        reason: str | None,
    ) -> None:
        pass  # voids tokens, not the client: the token read models act on it

    def delete(self, *, now: datetime, actor: str, reason: str | None) -> None:
        self._require_not_deleted()
        self._deleted(at=now, actor=actor, reason=reason)

    @event(Deleted)
    def _deleted(self, at: datetime, actor: str, reason: str | None) -> None:
        self.status = "deleted"
        self.secrets = []


def event_time(event: Client.Registered | Client.Changed) -> datetime:
    """When a client event happened, by the time the command recorded (not the write time)."""
    return event.registered_at if isinstance(event, Client.Registered) else event.at
