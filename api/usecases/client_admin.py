"""Admin use cases on clients, shared by the CLI and the admin HTTP API."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from eventsourcing.persistence import IntegrityError

from adapters.client_assertion import check_public_keys
from adapters.client_secrets import SecretHasher, generate_secret
from adapters.event_store import Ledger
from adapters.projection_tables import clients_table
from api.usecases.ports import Clock
from api.usecases.projection_rebuild import RebuildRefused, copy_records
from domain.admin_scopes import ADMIN_SCOPES, FULL, Admin, Permission, to_manage
from domain.client import (
    AUTH_METHODS,
    CLIENT_SECRET_BASIC,
    DEFAULT_GRACE,
    PRIVATE_KEY_JWT,
    Client,
    event_time,
)
from domain.client_keys import public_jwks
from domain.client_record import ClientRecord
from domain.client_settings import ClientSettings, InvalidClientSettings
from projections.clients import ClientsFollower, ClientsView, evolve


class ClientNotFound(LookupError):
    """No client has that id (or it did not exist at the time asked about)."""


class ConcurrentChange(Exception):
    """Another admin changed the client between this command's read and its write."""


class VersionMismatch(ConcurrentChange):
    """The client is not at the version the caller named (`If-Match`, RFC 9110 §13.1.1)."""


@dataclass(frozen=True)
class NewCredentials:
    """A client id with its secret: the only moment the secret exists outside the client."""

    client_id: str
    client_secret: str
    generation: int = 1

    def __repr__(self) -> str:
        return f"NewCredentials(client_id={self.client_id!r}, generation={self.generation})"


_DURATION = re.compile(r"([0-9]{1,9})([smhd]?)", re.ASCII)
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86_400}
_CLIENT_ID = re.compile(r"[0-9a-fA-F]{8}(-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}", re.ASCII)


def parse_duration(text: str) -> timedelta:
    """`30s`, `15m`, `24h`, `7d`, or plain seconds (at most nine digits: never an overflow)."""
    match = _DURATION.fullmatch(text.strip())
    if not match:
        raise InvalidClientSettings(f"not a duration (use 30s, 15m, 24h or 7d): {text!r}")
    return timedelta(seconds=int(match.group(1)) * _UNITS[match.group(2)])


def canonical_client_id(client_id: str) -> str:
    """The id as the store keeps it (a lower-case UUID), or `ClientNotFound`: every command
    and view then uses one spelling, so nothing after a write can miss the client."""
    if not _CLIENT_ID.fullmatch(client_id):
        raise ClientNotFound(f"no client with id {client_id}")
    return client_id.lower()


def _client_uuid(client_id: str) -> uuid.UUID:
    return uuid.UUID(canonical_client_id(client_id))


def event_name(event: Any) -> str:
    """`SecretRotated` -> `secret_rotated`."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", type(event).__name__).lower()


_NOT_CHANGES = {"originator_id", "originator_version", "originator_topic", "timestamp", "at"}
_NOT_CHANGES |= {"actor", "reason", "secret_hash", "registered_at"}


def history_entry(event: Any) -> dict[str, Any]:
    """One line of a client's history: when, who, what changed, why; never a secret hash."""
    at = event_time(event)
    changes = {
        k: (v.isoformat() if isinstance(v, datetime) else v)
        for k, v in vars(event).items()
        if k not in _NOT_CHANGES
    }
    return {
        "version": event.originator_version,
        "at": at.isoformat(),
        "actor": event.actor,
        "event": event_name(event),
        "changes": changes,
        "reason": event.reason,
    }


@dataclass(frozen=True)
class Quotas:
    """Both quotas replace the old ones; None: no limit."""

    tokens_per_minute: int | None = None
    tokens_per_day: int | None = None


@dataclass(frozen=True)
class ClientChanges:
    """Any subset of a client's settings; all of it is recorded atomically (one save)."""

    name: str | None = None
    allowed_scopes: list[str] | None = None
    default_scopes: list[str] | None = None
    token_ttl: int | None = None
    audiences: list[str] | None = None
    default_audience: str | None = None
    quotas: Quotas | None = None

    def apply(self, client: Client, now: datetime, actor: str, reason: str | None) -> None:
        if self.name is not None:
            client.rename(name=self.name, now=now, actor=actor, reason=reason)
        if self.allowed_scopes is not None or self.default_scopes is not None:
            client.change_scopes(
                allowed_scopes=(
                    client.allowed_scopes if self.allowed_scopes is None else self.allowed_scopes
                ),
                default_scopes=self.default_scopes,
                now=now,
                actor=actor,
                reason=reason,
            )
        if self.token_ttl is not None:
            client.change_token_lifetime(
                token_ttl=self.token_ttl, now=now, actor=actor, reason=reason
            )
        if self.audiences is not None or self.default_audience is not None:
            client.change_audiences(
                audiences=client.audiences if self.audiences is None else self.audiences,
                default_audience=self.default_audience,
                now=now,
                actor=actor,
                reason=reason,
            )
        if self.quotas is not None:
            client.change_quotas(
                tokens_per_minute=self.quotas.tokens_per_minute,
                tokens_per_day=self.quotas.tokens_per_day,
                now=now,
                actor=actor,
                reason=reason,
            )


@dataclass(frozen=True)
class Registered:
    """A new client: its id, and its secret when it authenticates with one (shown once)."""

    client_id: str
    client_secret: str | None

    def __repr__(self) -> str:
        return f"Registered(client_id={self.client_id!r})"


class ClientAdmin:
    """Every command and query an admin runs against clients, each checked against the
    caller's admin scopes (`domain.admin_scopes`) before anything is read or written."""

    def __init__(self, ledger: Ledger, hasher: SecretHasher, clock: Clock) -> None:
        self._ledger = ledger
        self._hasher = hasher
        self._clock = clock

    @property
    def ledger(self) -> Ledger:
        return self._ledger

    # -- registration ---------------------------------------------------------------------

    def register(
        self,
        settings: ClientSettings,
        *,
        by: Admin,
        reason: str | None = None,
        auth_method: str = CLIENT_SECRET_BASIC,
        jwks: Any = None,
    ) -> Registered:
        """Register a client that authenticates with a generated secret (returned once) or,
        for `private_key_jwt`, with the public keys given (RFC 7591 §2)."""
        by.require(to_manage(settings.allowed_scopes))
        if auth_method not in AUTH_METHODS:
            raise InvalidClientSettings(
                f"token_endpoint_auth_method must be one of {', '.join(AUTH_METHODS)}"
            )
        if (auth_method == PRIVATE_KEY_JWT) != (jwks is not None):
            raise InvalidClientSettings("jwks goes with token_endpoint_auth_method=private_key_jwt")
        if jwks is not None:
            check_public_keys(public_jwks(jwks))
        secret = generate_secret() if jwks is None else None
        client = Client.register(
            client_id=uuid.uuid4(),
            settings=settings,
            secret_hash=None if secret is None else self._hasher.hash(secret),
            now=self._clock.now(),
            actor=by.actor,
            reason=reason,
            jwks=jwks,
        )
        self._ledger.save(client)
        return Registered(client.client_id, secret)

    # -- commands on one client -----------------------------------------------------------

    def update(
        self,
        client_id: str,
        changes: ClientChanges,
        *,
        by: Admin,
        reason: str | None = None,
        expected_version: int | None = None,
    ) -> Client:
        """Change name, scopes, lifetime, audiences and quotas in one atomic save."""
        after = [] if changes.allowed_scopes is None else changes.allowed_scopes
        return self._change(
            client_id,
            lambda c, now: changes.apply(c, now, by.actor, reason),
            by=by,
            granting=after,
            expected_version=expected_version,
        )

    def rotate_secret(
        self,
        client_id: str,
        *,
        grace: timedelta = DEFAULT_GRACE,
        by: Admin,
        reason: str | None = None,
        expected_version: int | None = None,
    ) -> NewCredentials:
        secret = generate_secret()
        secret_hash = self._hasher.hash(secret)
        client = self._change(
            client_id,
            lambda c, now: c.rotate_secret(
                secret_hash=secret_hash, now=now, grace=grace, actor=by.actor, reason=reason
            ),
            by=by,
            expected_version=expected_version,
        )
        return NewCredentials(client.client_id, secret, client.secret_generation)

    def replace_keys(
        self,
        client_id: str,
        jwks: Any,
        *,
        by: Admin,
        reason: str | None = None,
        expected_version: int | None = None,
    ) -> Client:
        """Replace a `private_key_jwt` client's public keys (`ClientKeysReplaced`)."""

        def replace(client: Client, now: datetime) -> None:
            check_public_keys(public_jwks(jwks))  # after the caller's scopes are checked
            client.replace_keys(jwks=jwks, now=now, actor=by.actor, reason=reason)

        return self._change(
            client_id,
            replace,
            by=by,
            expected_version=expected_version,
        )

    def revoke_previous_secret(
        self,
        client_id: str,
        *,
        by: Admin,
        reason: str | None = None,
        expected_version: int | None = None,
    ) -> Client:
        """End the previous secret's grace period now."""
        return self._change(
            client_id,
            lambda c, now: c.revoke_previous_secret(now=now, actor=by.actor, reason=reason),
            by=by,
            expected_version=expected_version,
        )

    def suspend(
        self,
        client_id: str,
        *,
        by: Admin,
        reason: str | None,
        expected_version: int | None = None,
    ) -> Client:
        """Refuse the client everywhere and void its tokens (a reason is required)."""
        return self._change(
            client_id,
            lambda c, now: c.suspend(now=now, actor=by.actor, reason=reason),
            by=by,
            expected_version=expected_version,
        )

    def reactivate(
        self,
        client_id: str,
        *,
        by: Admin,
        reason: str | None = None,
        expected_version: int | None = None,
    ) -> Client:
        return self._change(
            client_id,
            lambda c, now: c.reactivate(now=now, actor=by.actor, reason=reason),
            by=by,
            expected_version=expected_version,
        )

    def delete(
        self,
        client_id: str,
        *,
        by: Admin,
        reason: str | None = None,
        expected_version: int | None = None,
    ) -> Client:
        """Decommission: the client never authenticates again; its history stays."""
        return self._change(
            client_id,
            lambda c, now: c.delete(now=now, actor=by.actor, reason=reason),
            by=by,
            expected_version=expected_version,
        )

    def revoke_tokens(
        self,
        client_id: str,
        *,
        by: Admin,
        cutoff: datetime | None = None,
        secret_generation: int | None = None,
        reason: str | None = None,
        expected_version: int | None = None,
    ) -> Client:
        """Void the client's tokens issued before `cutoff` (default now), or only those
        minted with one secret generation. An incident responder's command: it needs the
        token-revocation scope, not client management."""
        by.require(Permission.REVOKE_TOKENS)
        return self._save_change(
            self.load(client_id),
            lambda c, now: c.revoke_tokens(
                cutoff=cutoff,
                secret_generation=secret_generation,
                now=now,
                actor=by.actor,
                reason=reason,
            ),
            expected_version,
        )

    # -- queries --------------------------------------------------------------------------

    def show(self, client_id: str, *, by: Admin) -> Client:
        by.require(Permission.READ)
        return self.load(client_id)

    def state_at(self, client_id: str, at: datetime, *, by: Admin) -> ClientRecord:
        """The client as it was at `at`, folded from its own events up to then."""
        by.require(Permission.READ)
        if at > self._clock.now():
            raise InvalidClientSettings("the time asked about is in the future")
        record: ClientRecord | None = None
        for event in self._ledger.repository.event_store.get(_client_uuid(client_id)):
            if event_time(event) > at:  # type: ignore[arg-type]
                break
            record = evolve(record, event)
        if record is None:
            raise ClientNotFound(f"client {client_id} did not exist at {at.isoformat()}")
        return record

    def history(self, client_id: str, *, by: Admin) -> list[dict[str, Any]]:
        by.require(Permission.READ)
        events = list(self._ledger.repository.event_store.get(_client_uuid(client_id)))
        if not events:
            raise ClientNotFound(f"no client with id {client_id}")
        return [history_entry(e) for e in events]

    def listing(self, view: ClientsView, *, by: Admin) -> list[ClientRecord]:
        by.require(Permission.READ)
        return view.all()

    def listing_as_of(self, copy: str, *, by: Admin) -> list[ClientRecord]:
        """Every client in a point-in-time copy (`projections rebuild --until`)."""
        by.require(Permission.READ)
        try:
            copied = copy_records(self._ledger, copy, "clients")
        except RebuildRefused as missing:
            raise ClientNotFound(str(missing)) from None
        return sorted(copied, key=lambda r: (r.registered_at, r.client_id))

    def admin_clients(self, view: ClientsView) -> list[ClientRecord]:
        return [
            r
            for r in view.all()
            if r.status != "deleted" and set(r.allowed_scopes) & set(ADMIN_SCOPES)
        ]

    # -- the one write path ---------------------------------------------------------------

    def load(self, client_id: str) -> Client:
        client = self._ledger.get_client(_client_uuid(client_id))
        if client is None:
            raise ClientNotFound(f"no client with id {client_id}")
        return client

    def _change(
        self,
        client_id: str,
        command: Callable[[Client, datetime], None],
        *,
        by: Admin,
        granting: list[str] | None = None,
        expected_version: int | None = None,
    ) -> Client:
        """Check the caller may manage this client (and what it would hold after), then
        load, run the command and save."""
        client = self.load(client_id)
        by.require(to_manage(client.allowed_scopes, granting or []))
        return self._save_change(client, command, expected_version)

    def _save_change(
        self,
        client: Client,
        command: Callable[[Client, datetime], None],
        expected_version: int | None,
    ) -> Client:
        """Run the command and save; a concurrent change makes it fail, never overwrite."""
        if expected_version is not None and client.version != expected_version:
            raise VersionMismatch(f"the client is at version {client.version}")
        command(client, self._clock.now())
        try:
            self._ledger.save(client)
        except IntegrityError:
            raise ConcurrentChange("the client was changed concurrently; retry") from None
        return client


ADMIN_SCOPE = FULL  # the scope `admin bootstrap` gives the first admin client


def current_clients(ledger: Ledger) -> ClientsView:
    """The clients read model brought up to date with every committed event."""
    view = ClientsView()
    ClientsFollower(ledger, clients_table(ledger.datastore), view).load()
    return view


def register_client(
    ledger: Ledger,
    hasher: SecretHasher,
    clock: Clock,
    settings: ClientSettings,
    *,
    actor: str,
    reason: str | None = None,
) -> NewCredentials:
    """Register a client as the installation itself (a shorthand for scripts and tests)."""
    registered = ClientAdmin(ledger, hasher, clock).register(
        settings, by=Admin.installation(actor), reason=reason
    )
    assert registered.client_secret is not None
    return NewCredentials(registered.client_id, registered.client_secret)
