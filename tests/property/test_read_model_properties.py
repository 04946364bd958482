"""Invariants 4 and 6 over random histories: read models rebuild exactly; no secret is stored."""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.client_secrets import SecretHasher
from adapters.clients_table import clients_table
from adapters.clock import FixedClock
from adapters.event_store import Ledger
from api.client_admin import register_client
from domain.client_settings import ClientSettings
from projections.clients import ClientsFollower, ClientsView
from tests.property.strategies import scope_sets

client_settings = st.builds(
    lambda name, allowed, ttl: ClientSettings.create(
        name=name, allowed_scopes=allowed, token_ttl=ttl
    ),
    st.text(alphabet="abcdefghij-", min_size=1, max_size=10),
    scope_sets,
    st.integers(60, 86_400),
)


@settings(max_examples=25, deadline=None)
@given(history=st.lists(client_settings, max_size=12), follow_every=st.integers(1, 5))
def test_rebuilding_the_clients_model_gives_the_live_state(
    history: list[ClientSettings], follow_every: int
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        ledger = Ledger(f"sqlite:///{tmp}/k.db")
        try:
            hasher = SecretHasher(b"p" * 32)
            clock = FixedClock(datetime(2026, 11, 20, tzinfo=UTC))
            live = ClientsFollower(ledger, clients_table(ledger.datastore), ClientsView())
            live.load()
            for i, item in enumerate(history):
                clock.advance(60)
                register_client(ledger, hasher, clock, item, actor="test")
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
