"""Admin use cases on clients, shared by the CLI and (later) the admin HTTP API."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from adapters.client_secrets import SecretHasher, generate_secret
from adapters.clients_table import clients_table
from adapters.event_store import Ledger
from api.issuance import Clock
from domain.client import Client, ClientSettings
from projections.clients import ClientsFollower, ClientsView


@dataclass(frozen=True)
class NewCredentials:
    """A client id with its secret: the only moment the secret exists outside the client."""

    client_id: str
    client_secret: str

    def __repr__(self) -> str:
        return f"NewCredentials(client_id={self.client_id!r})"


def register_client(
    ledger: Ledger,
    hasher: SecretHasher,
    clock: Clock,
    settings: ClientSettings,
    *,
    actor: str,
    reason: str | None = None,
) -> NewCredentials:
    """Register a client; its secret is generated here and returned once."""
    secret = generate_secret()
    client = Client.register(
        client_id=uuid.uuid4(),
        settings=settings,
        secret_hash=hasher.hash(secret),
        now=clock.now(),
        actor=actor,
        reason=reason,
    )
    ledger.save(client)
    return NewCredentials(client.client_id, secret)


def current_clients(ledger: Ledger) -> ClientsView:
    """The clients read model brought up to date with every committed event."""
    view = ClientsView()
    ClientsFollower(ledger, clients_table(ledger.datastore), view).load()
    return view
