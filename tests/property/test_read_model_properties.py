"""Invariants 4 and 6 over random histories: read models rebuild exactly; no secret is stored."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.client_secrets import SecretHasher
from adapters.clock import FixedClock
from adapters.event_store import Ledger
from adapters.projection_tables import clients_table
from api.usecases.client_admin import ClientAdmin, ClientChanges, register_client
from domain.admin_scopes import Admin
from domain.client import PRIVATE_KEY_JWT, ClientCommandRejected
from domain.client_settings import ClientSettings, InvalidClientSettings
from projections.clients import ClientsFollower, ClientsView
from tests.assertions import client_key, jwks_of
from tests.property.strategies import scope_sets

client_settings = st.builds(
    lambda name, allowed, ttl: ClientSettings.create(
        name=name, allowed_scopes=allowed, token_ttl=ttl
    ),
    st.text(alphabet="abcdefghij-", min_size=1, max_size=10),
    scope_sets,
    st.integers(60, 86_400),
)


COMMANDS = st.sampled_from(
    [
        "rotate",
        "revoke_previous",
        "suspend",
        "reactivate",
        "scopes",
        "ttl",
        "audiences",
        "rename",
        "revoke_tokens",
        "revoke_generation",
        "delete",
        "register",
        "register_keyed",
        "replace_keys",
        "default_audience",
    ]
)
KEYS = [jwks_of(client_key("ES256", kid=f"k{i}")) for i in range(2)]
BY = Admin.installation("test")


def _register(admin: ClientAdmin, settings: ClientSettings, command: str) -> str:
    """A secret client, or (`register_keyed`) a private_key_jwt one."""
    if command == "register_keyed":
        return admin.register(settings, by=BY, auth_method=PRIVATE_KEY_JWT, jwks=KEYS[0]).client_id
    return admin.register(settings, by=BY).client_id


def _apply(admin: ClientAdmin, clock: FixedClock, client_id: str, command: str) -> None:
    """One admin command; ones the client's state refuses are part of a random history too."""
    changes = {
        "scopes": ClientChanges(allowed_scopes=["x", "y"], default_scopes=None),
        "ttl": ClientChanges(token_ttl=900),
        "audiences": ClientChanges(audiences=["https://a.example"]),
        "default_audience": ClientChanges(
            audiences=["https://a.example", "https://b.example"],
            default_audience="https://b.example",
        ),
        "rename": ClientChanges(name="renamed"),
    }
    commands: dict[str, Callable[[], object]] = {
        "rotate": lambda: admin.rotate_secret(client_id, grace=timedelta(seconds=90), by=BY),
        "replace_keys": lambda: admin.replace_keys(client_id, KEYS[1], by=BY),
        "revoke_previous": lambda: admin.revoke_previous_secret(client_id, by=BY, reason=None),
        "suspend": lambda: admin.suspend(client_id, by=BY, reason="r"),
        "reactivate": lambda: admin.reactivate(client_id, by=BY, reason=None),
        "revoke_tokens": lambda: admin.revoke_tokens(
            client_id, by=BY, cutoff=clock.now(), secret_generation=None, reason=None
        ),
        "revoke_generation": lambda: admin.revoke_tokens(
            client_id, by=BY, cutoff=clock.now(), secret_generation=1, reason=None
        ),
        "delete": lambda: admin.delete(client_id, by=BY, reason=None),
    }
    try:
        if command in changes:
            admin.update(client_id, changes[command], by=BY, reason=None)
        else:
            commands[command]()
    except (ClientCommandRejected, InvalidClientSettings):
        pass


@settings(max_examples=25, deadline=None)
@given(
    first=client_settings,
    history=st.lists(st.tuples(COMMANDS, st.integers(0, 3), st.integers(0, 120)), max_size=25),
    follow_every=st.integers(1, 5),
)
def test_rebuilding_the_clients_model_gives_the_live_state(
    first: ClientSettings, history: list[tuple[str, int, int]], follow_every: int
) -> None:
    """Invariant 4: live (followed in random chunks), rebuilt and durable models agree."""
    with tempfile.TemporaryDirectory() as tmp:
        ledger = Ledger(f"sqlite:///{tmp}/k.db")
        try:
            clock = FixedClock(datetime(2026, 11, 20, tzinfo=UTC))
            admin = ClientAdmin(ledger, SecretHasher(b"p" * 32), clock)
            live = ClientsFollower(ledger, clients_table(ledger.datastore), ClientsView())
            live.load()
            ids = [admin.register(first, by=BY).client_id]
            for i, (command, which, seconds) in enumerate(history):
                clock.advance(seconds)
                if command.startswith("register"):
                    ids.append(_register(admin, first, command))
                else:
                    _apply(admin, clock, ids[which % len(ids)], command)
                if i % follow_every == 0:
                    live.catch_up()
            live.catch_up()
            rebuilt = ClientsView()
            for notification in ledger.read(0, 10_000):
                rebuilt.apply(ledger.mapper.to_domain_event(notification), notification.id)
            stored, position = clients_table(ledger.datastore).load()
            assert rebuilt.all() == live.view.all()
            assert sorted(stored, key=lambda r: (r.registered_at, r.client_id)) == live.view.all()
            assert position == live.view.position == rebuilt.position
            for record in live.view.all():  # and each equals its own point-in-time fold
                assert admin.state_at(record.client_id, clock.now(), by=BY) == record
        finally:
            ledger.close()


@settings(max_examples=10, deadline=None)
@given(st.lists(client_settings, min_size=1, max_size=5))
def test_no_plaintext_secret_is_ever_stored(history: list[ClientSettings]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        ledger = Ledger(f"sqlite:///{tmp}/k.db")
        clock = FixedClock(datetime(2026, 11, 20, tzinfo=UTC) + timedelta(days=1))
        try:
            created = [
                register_client(ledger, SecretHasher(b"p" * 32), clock, item, actor="test")
                for item in history
            ]
            ClientsFollower(ledger, clients_table(ledger.datastore), ClientsView()).load()
        finally:
            ledger.close()
        stored = b"".join(p.read_bytes() for p in Path(tmp).iterdir())
        for c in created:
            assert c.client_secret.encode() not in stored
            assert c.client_secret.removeprefix("kl_secret_").encode() not in stored
