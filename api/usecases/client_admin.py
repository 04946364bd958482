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
from domain.client import DEFAULT_GRACE, Client, event_time
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


class ClientAdmin:
    """Commands and queries an admin runs against clients."""

    def __init__(self, ledger: Ledger, hasher: SecretHasher, clock: Clock) -> None:
        self._ledger = ledger
        self._hasher = hasher
        self._clock = clock

    @property
    def ledger(self) -> Ledger:
        return self._ledger

    def register(
        self, settings: ClientSettings, *, actor: str, reason: str | None = None
    ) -> NewCredentials:
        """Register a client; its secret is generated here and returned once."""
        secret = generate_secret()
        client = Client.register(
            client_id=uuid.uuid4(),
            settings=settings,
            secret_hash=self._hasher.hash(secret),
            now=self._clock.now(),
            actor=actor,
            reason=reason,
        )
        self._ledger.save(client)
        return NewCredentials(client.client_id, secret)

    def register_with_keys(
        self, settings: ClientSettings, jwks: Any, *, actor: str, reason: str | None = None
    ) -> str:
        """Register a `private_key_jwt` client with its public keys; it never has a secret."""
        check_public_keys(public_jwks(jwks))
        client = Client.register(
            client_id=uuid.uuid4(),
            settings=settings,
            secret_hash=None,
            now=self._clock.now(),
            actor=actor,
            reason=reason,
            jwks=jwks,
        )
        self._ledger.save(client)
        return client.client_id

    def replace_keys(
        self,
        client_id: str,
        jwks: Any,
        *,
        actor: str,
        reason: str | None = None,
        expected_version: int | None = None,
    ) -> Client:
        """Replace a `private_key_jwt` client's public keys (`ClientKeysReplaced`)."""
        check_public_keys(public_jwks(jwks))
        return self.change(
            client_id,
            lambda c, now: c.replace_keys(jwks=jwks, now=now, actor=actor, reason=reason),
            expected_version=expected_version,
        )

    def load(self, client_id: str) -> Client:
        client = self._ledger.get_client(_client_uuid(client_id))
        if client is None:
            raise ClientNotFound(f"no client with id {client_id}")
        return client

    def change(
        self,
        client_id: str,
        command: Callable[[Client, datetime], None],
        *,
        expected_version: int | None = None,
    ) -> Client:
        """Load, run the command, save; a concurrent change makes it fail, never overwrite."""
        client = self.load(client_id)
        if expected_version is not None and client.version != expected_version:
            raise VersionMismatch(f"the client is at version {client.version}")
        command(client, self._clock.now())
        try:
            self._ledger.save(client)
        except IntegrityError:
            raise ConcurrentChange("the client was changed concurrently; retry") from None
        return client

    def rotate_secret(
        self,
        client_id: str,
        *,
        grace: timedelta = DEFAULT_GRACE,
        actor: str,
        reason: str | None = None,
        expected_version: int | None = None,
    ) -> NewCredentials:
        secret = generate_secret()
        secret_hash = self._hasher.hash(secret)
        client = self.change(
            client_id,
            lambda c, now: c.rotate_secret(
                secret_hash=secret_hash, now=now, grace=grace, actor=actor, reason=reason
            ),
            expected_version=expected_version,
        )
        return NewCredentials(client.client_id, secret, client.secret_generation)

    def state_at(self, client_id: str, at: datetime) -> ClientRecord:
        """The client as it was at `at`, folded from its own events up to then."""
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

    def history(self, client_id: str) -> list[dict[str, Any]]:
        events = list(self._ledger.repository.event_store.get(_client_uuid(client_id)))
        if not events:
            raise ClientNotFound(f"no client with id {client_id}")
        return [history_entry(e) for e in events]

    def admin_clients(self, view: ClientsView) -> list[ClientRecord]:
        return [r for r in view.all() if r.status != "deleted" and ADMIN_SCOPE in r.allowed_scopes]


ADMIN_SCOPE = "keyledger:admin"


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
    """Register a client (a shorthand for scripts and tests)."""
    return ClientAdmin(ledger, hasher, clock).register(settings, actor=actor, reason=reason)
