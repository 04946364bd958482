"""The clients read model: what the token endpoint authenticates against.

Every process holds the whole model in memory and follows the notification log, so the
token endpoint never queries for a client. The same fold is written to a durable table with
its tracked position, so a process starts from the table instead of the first event.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from typing import Any, Protocol

from eventsourcing.utils import get_topic

from adapters.clients_table import ClientsTable
from domain.client import Client, SecretSlot
from domain.client_record import ClientRecord

log = logging.getLogger(__name__)

CLIENT_EVENT_TYPES: tuple[type[Any], ...] = (
    Client.Registered,
    Client.SecretRotated,
    Client.PreviousSecretRevoked,
    Client.Suspended,
    Client.Reactivated,
    Client.ScopesChanged,
    Client.TokenLifetimeChanged,
    Client.AudiencesChanged,
    Client.Renamed,
    Client.TokensRevoked,
    Client.Deleted,
)
CLIENT_TOPICS = tuple(get_topic(t) for t in CLIENT_EVENT_TYPES)
READ_BATCH = 1000


def registered(event: Client.Registered) -> ClientRecord:
    return ClientRecord(
        client_id=str(event.originator_id),
        name=event.name,
        status="active",
        allowed_scopes=frozenset(event.allowed_scopes),
        default_scopes=frozenset(event.default_scopes),
        token_ttl=event.token_ttl,
        audiences=tuple(event.audiences),
        secrets=(SecretSlot(generation=1, secret_hash=event.secret_hash, expires_at=None),),
        version=event.originator_version,
        registered_at=event.registered_at,
        updated_at=event.registered_at,
    )


def _changes(record: ClientRecord, event: Any) -> dict[str, Any]:
    """The fields a later client event changes."""
    match event:
        case Client.SecretRotated():
            return {
                "secrets": (
                    SecretSlot(event.generation, event.secret_hash, None),
                    SecretSlot(
                        event.previous_generation,
                        record.secrets[0].secret_hash,
                        event.previous_expires_at,
                    ),
                )
            }
        case Client.PreviousSecretRevoked():
            return {"secrets": tuple(s for s in record.secrets if s.generation != event.generation)}
        case Client.Suspended():
            return {"status": "suspended"}
        case Client.Reactivated():
            return {"status": "active"}
        case Client.ScopesChanged():
            return {
                "allowed_scopes": frozenset(event.allowed_scopes),
                "default_scopes": frozenset(event.default_scopes),
            }
        case Client.TokenLifetimeChanged():
            return {"token_ttl": event.token_ttl}
        case Client.AudiencesChanged():
            return {"audiences": tuple(event.audiences)}
        case Client.Renamed():
            return {"name": event.name}
        case Client.TokensRevoked() if event.secret_generation is None:
            before = record.tokens_revoked_before
            return {"tokens_revoked_before": max(filter(None, (before, event.cutoff)))}
        case Client.TokensRevoked(secret_generation=int(generation)):
            cutoffs = dict(record.generation_cutoffs)
            cutoffs[generation] = max(filter(None, (cutoffs.get(generation), event.cutoff)))
            return {"generation_cutoffs": tuple(sorted(cutoffs.items()))}
        case Client.Deleted():
            return {"status": "deleted", "secrets": ()}
    return {}


def evolve(record: ClientRecord | None, event: Any) -> ClientRecord | None:
    """The record after one `Client` event (a pure fold; replay gives the same record)."""
    if isinstance(event, Client.Registered):
        return registered(event)
    if record is None or not isinstance(event, Client.Changed):
        return record
    return record.evolve(
        **_changes(record, event), version=event.originator_version, updated_at=event.at
    )


class ClientsView:
    """The in-memory clients model: lock-free reads, written only by its follower."""

    def __init__(self) -> None:
        self._records: dict[str, ClientRecord] = {}
        self.position = 0

    def get(self, client_id: str) -> ClientRecord | None:
        return self._records.get(client_id)

    def all(self) -> list[ClientRecord]:
        return sorted(self._records.values(), key=lambda r: (r.registered_at, r.client_id))

    def replace(self, records: Iterable[ClientRecord], position: int) -> None:
        self._records = {r.client_id: r for r in records}
        self.position = position

    def apply(self, event: Any, notification_id: int) -> str | None:
        """Fold one event in; the id of the client it touched, if any."""
        client_id = str(event.originator_id)
        record = evolve(self._records.get(client_id), event)
        self.position = notification_id
        if record is None:
            return None
        self._records[client_id] = record
        return client_id


class NotificationLog(Protocol):
    """The part of the event store a follower reads."""

    def head(self) -> int: ...

    def read(self, after: int, limit: int, stop: int | None = None, topics: Any = ()) -> Any: ...

    @property
    def mapper(self) -> Any: ...


class ClientsFollower:
    """Keeps a `ClientsView` and the durable clients table up to date with the log."""

    def __init__(
        self, log_: NotificationLog, table: ClientsTable, view: ClientsView, interval: float = 0.1
    ) -> None:
        self._log = log_
        self._table = table
        self.view = view
        self._interval = interval
        self._scanned = 0
        self._unsaved: set[str] = set()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.ready = threading.Event()
        self._lock = threading.Lock()

    def load(self) -> None:
        """Start from the durable table, then catch up with the log."""
        records, position = self._table.load()
        with self._lock:
            self.view.replace(records, position)
            self._scanned = position
        self.catch_up()
        self.ready.set()

    def catch_up(self) -> None:
        """Fold every committed client event not yet seen, then persist what changed."""
        with self._lock:
            head = self._log.head()
            while self._scanned < head:
                batch = self._log.read(self._scanned, READ_BATCH, stop=head, topics=CLIENT_TOPICS)
                for notification in batch:
                    event = self._log.mapper.to_domain_event(notification)
                    touched = self.view.apply(event, notification.id)
                    if touched:
                        self._unsaved.add(touched)
                self._scanned = batch[-1].id if len(batch) == READ_BATCH else head
            self._save()

    def _save(self) -> None:
        if not self._unsaved:
            return
        records = [r for cid in sorted(self._unsaved) if (r := self.view.get(cid))]
        if not self._table.write(records, self.view.position):
            log.debug("clients table already at or past %s", self.view.position)
        self._unsaved.clear()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="clients-follower", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                if self.ready.is_set():
                    self.catch_up()
                else:
                    self.load()
            except Exception:
                log.exception("clients follower could not catch up; retrying")

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
