"""Issue 7 part 6 over random histories: a rebuilt projection equals the live one (also when
the rebuild happens mid-history and the live follower writes on into the swapped-in table),
and a point-in-time copy at T equals the projection of the history cut at T."""

from __future__ import annotations

import contextlib
import tempfile
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.client_secrets import SecretHasher
from adapters.clock import FixedClock
from adapters.event_store import Ledger
from adapters.projection_tables import clients_table
from api.usecases.client_admin import ClientAdmin, ClientNotFound
from api.usecases.projection_rebuild import copy_records, copy_until, rebuild
from domain.client_settings import ClientSettings
from projections.clients import ClientsFollower, ClientsView
from tests.property.test_read_model_properties import (
    BY,
    COMMANDS,
    _apply,
    _register,
    client_settings,
)

START = datetime(2026, 11, 20, tzinfo=UTC)


def no_progress(done: int, head: int) -> None:
    pass


def by_id(records: list) -> list:  # type: ignore[type-arg]
    return sorted(records, key=lambda r: r.client_id)


@settings(max_examples=40, deadline=None)
@given(
    first=client_settings,
    history=st.lists(st.tuples(COMMANDS, st.integers(0, 3), st.integers(0, 120)), max_size=20),
    rebuild_at=st.integers(0, 20),
    cut=st.integers(0, 20 * 120),
)
def test_rebuilt_and_copied_clients_models_equal_the_live_and_cut_folds(
    first: ClientSettings, history: list[tuple[str, int, int]], rebuild_at: int, cut: int
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        ledger = Ledger(f"sqlite:///{tmp}/k.db")
        try:
            clock = FixedClock(START)
            admin = ClientAdmin(ledger, SecretHasher(b"p" * 32), clock)
            live = ClientsFollower(ledger, clients_table(ledger.datastore), ClientsView())
            live.load()
            ids = [admin.register(first, by=BY).client_id]
            for i, (command, which, seconds) in enumerate(history):
                if i == rebuild_at:  # the live follower writes on into the swapped-in table
                    rebuild(ledger, "clients", no_progress)
                clock.advance(seconds)
                if command.startswith("register"):
                    ids.append(_register(admin, first, command))
                else:
                    _apply(admin, clock, ids[which % len(ids)], command)
                live.catch_up()
            live.catch_up()

            stored, _ = clients_table(ledger.datastore).load()
            assert by_id(stored) == by_id(live.view.all())
            report = rebuild(ledger, "clients", no_progress)
            stored, position = clients_table(ledger.datastore).load()
            assert by_id(stored) == by_id(live.view.all())
            assert position == report.position == ledger.head()

            moment = min(START + timedelta(seconds=cut), clock.now())
            copy = copy_until(ledger, "clients", moment, clock.now() + timedelta(1), no_progress)
            assert copy.copy is not None
            expected = []
            for client_id in ids:
                with contextlib.suppress(ClientNotFound):  # registered after the cut
                    expected.append(admin.state_at(client_id, moment, by=BY))
            assert by_id(copy_records(ledger, copy.copy, "clients")) == by_id(expected)
        finally:
            ledger.close()
