"""A worker's followers wake when PostgreSQL says the log changed in a way they fold, not on a
timer (real PostgreSQL: the append function's NOTIFY, a listening connection, a follower)."""

from __future__ import annotations

import re
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import psycopg
import pytest

from adapters import log_changes
from adapters.client_secrets import SecretHasher
from adapters.clock import FixedClock
from adapters.event_store import Ledger
from adapters.log_changes import ChangeListener, LogChanges, next_turn
from adapters.postgres_recorder import changes_channel
from adapters.projection_tables import clients_table
from api.usecases.client_admin import ClientAdmin
from domain.admin_scopes import Admin
from domain.client_settings import ClientSettings
from projections.clients import ClientsFollower, ClientsView
from tests.backlog import issued_event

NOW = datetime(2026, 12, 4, 13, 30, tzinfo=UTC)


@pytest.fixture
def ledger(postgres_url: str) -> Iterator[Ledger]:
    store = Ledger(postgres_url)
    yield store
    store.close()


@pytest.fixture
def listener(postgres_url: str, ledger: Ledger) -> Iterator[ChangeListener]:
    channel = channel_of(ledger)
    started = ChangeListener(postgres_url, channel, LogChanges(), poll=0.05)
    started.start()
    until(lambda: started.changes.listening)
    yield started
    started.stop()


def channel_of(ledger: Ledger) -> str:
    return changes_channel(ledger.recorder.events_table_name)  # type: ignore[attr-defined]


def loaded_follower(ledger: Ledger, view: ClientsView, changes: LogChanges) -> ClientsFollower:
    """A clients follower turning every 0.05 s at most, waiting on `changes`, loaded."""
    follower = ClientsFollower(
        ledger, clients_table(ledger.datastore), view, interval=0.05, changes=changes
    )
    follower.load()
    return follower


def until(condition: object, seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "not within the time allowed"
        time.sleep(0.01)


def register(ledger: Ledger, name: str = "c") -> str:
    admin = ClientAdmin(ledger, SecretHasher(b"p" * 32), FixedClock(NOW))
    settings = ClientSettings.create(name=name, allowed_scopes=["a"])
    return admin.register(settings, by=Admin.installation("t")).client_id


def notified(url: str, channel: str, act: object, wait: float = 0.5) -> int:
    """How many notifications `channel` carried while `act()` ran (and `wait` seconds after)."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(psycopg.sql.SQL("LISTEN {}").format(psycopg.sql.Identifier(channel)))
        act()  # type: ignore[operator]
        return sum(1 for _ in conn.notifies(timeout=wait))


def test_appending_a_client_event_notifies_the_changes_channel(
    postgres_url: str, ledger: Ledger
) -> None:
    channel = channel_of(ledger)
    assert notified(postgres_url, channel, lambda: register(ledger)) >= 1


def test_appending_only_issued_tokens_does_not(postgres_url: str, ledger: Ledger) -> None:
    client_id = register(ledger)
    channel = channel_of(ledger)
    tokens = [issued_event(client_id, NOW, ["a"], str(uuid.uuid4())) for _ in range(5)]
    assert notified(postgres_url, channel, lambda: ledger.append(tokens)) == 0


def test_appending_only_issued_tokens_notifies_no_channel_at_all(
    postgres_url: str, ledger: Ledger
) -> None:
    # PostgreSQL (before 19) wakes every backend listening on any channel of the database at
    # each NOTIFY, so a notice on any channel would cost each worker's listener a wake-up per
    # batch of tokens: none is sent, on eventsourcing's channel or any the function names.
    client_id = register(ledger)
    recorder = ledger.recorder
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        source = conn.execute(
            "SELECT string_agg(prosrc, ' ') FROM pg_proc WHERE proname = %s",
            (f"{recorder.events_table_name}_append",),  # type: ignore[attr-defined]
        ).fetchone()
        assert source is not None
        named = re.findall(r'NOTIFY\s+"?(\w+)"?', source[0])
        assert named  # the changes channel, under its condition
        channels = {*named, recorder.channel_name}  # type: ignore[attr-defined]
        for channel in channels:
            conn.execute(psycopg.sql.SQL("LISTEN {}").format(psycopg.sql.Identifier(channel)))
        ledger.append([issued_event(client_id, NOW, ["a"], str(uuid.uuid4())) for _ in range(5)])
        assert [n.channel for n in conn.notifies(timeout=0.5)] == []


def test_a_follower_told_of_a_change_folds_it_long_before_its_safety_turn(
    ledger: Ledger, listener: ChangeListener, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(log_changes, "SAFETY_INTERVAL", 60.0)  # only the notice can wake it
    view = ClientsView()
    follower = loaded_follower(ledger, view, listener.changes)
    follower.start()
    try:
        time.sleep(0.3)  # its first turn is behind it: it waits for a change now
        client_id = register(ledger, "later")
        until(lambda: view.get(client_id) is not None)
    finally:
        follower.stop()


def test_issuing_tokens_does_not_wake_the_followers(
    ledger: Ledger, listener: ChangeListener
) -> None:
    client_id = register(ledger)
    time.sleep(0.2)
    before = listener.changes.generation
    ledger.append([issued_event(client_id, NOW, ["a"], str(uuid.uuid4())) for _ in range(20)])
    time.sleep(0.3)
    assert listener.changes.generation == before


def test_a_lost_listening_connection_polls_meanwhile_then_listens_again(
    postgres_url: str, ledger: Ledger, listener: ChangeListener, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(log_changes, "RECONNECT_AFTER", (0.2, 0.2))
    channel = channel_of(ledger)
    with psycopg.connect(postgres_url, autocommit=True) as admin:
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE query = %s AND datname = current_database() AND pid <> pg_backend_pid()",
            (f'LISTEN "{channel}"',),
        )
    until(lambda: not listener.changes.listening)
    until(lambda: listener.changes.listening)
    seen = listener.changes.generation
    register(ledger, "after the reconnection")
    until(lambda: listener.changes.generation != seen)


def turn_in_thread(changes: LogChanges, interval: float = 0.01) -> threading.Event:
    """`next_turn` on a thread, from the count as it is now; set once the turn came."""
    came, seen = threading.Event(), changes.generation

    def turn() -> None:
        next_turn(threading.Event(), interval, changes, seen)
        came.set()

    threading.Thread(target=turn, daemon=True).start()
    return came


def test_a_turn_with_a_listener_waits_for_a_change(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(log_changes, "SAFETY_INTERVAL", 60.0)
    changes = LogChanges()
    changes.listening = True
    came = turn_in_thread(changes)
    assert not came.wait(0.3)  # the interval is long over: it waits for the change
    changes.report()
    assert came.wait(10)


def test_a_turn_without_a_listener_is_the_interval(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(log_changes, "SAFETY_INTERVAL", 60.0)
    assert turn_in_thread(LogChanges()).wait(10)  # not listening: it polls


def test_a_stopped_follower_stops_waiting_for_a_change(
    ledger: Ledger, listener: ChangeListener, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(log_changes, "SAFETY_INTERVAL", 60.0)
    follower = loaded_follower(ledger, ClientsView(), listener.changes)
    follower.start()
    time.sleep(0.2)
    stopping = threading.Thread(target=follower.stop)
    stopping.start()
    stopping.join(10)
    assert not stopping.is_alive()  # not the 60 s the safety turn would take


def test_a_batch_holding_a_revocation_notifies_even_beside_issued_tokens(
    postgres_url: str, ledger: Ledger
) -> None:
    client_id = register(ledger)
    token = issued_event(client_id, NOW, ["a"], str(uuid.uuid4()))
    ledger.append([token])
    aggregate = token.mutate(None)
    assert aggregate is not None
    aggregate.revoke(now=NOW, actor="admin", reason=None)
    [revoked] = aggregate.collect_events()
    other = issued_event(client_id, NOW, ["a"], str(uuid.uuid4()))
    channel = channel_of(ledger)
    assert notified(postgres_url, channel, lambda: ledger.append([other, revoked])) >= 1


def test_a_follower_turns_every_safety_interval_when_no_notice_comes(
    ledger: Ledger, listener: ChangeListener, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A listener deaf without knowing it (here: a change that sends no notice) still leaves
    the follower within the safety turn."""
    monkeypatch.setattr(log_changes, "SAFETY_INTERVAL", 0.3)
    view = ClientsView()
    follower = loaded_follower(ledger, view, listener.changes)
    follower.start()
    try:
        time.sleep(0.2)
        listener.stop()  # no notices any more, yet still said to be listening
        listener.changes.listening = True
        client_id = register(ledger, "unannounced")
        until(lambda: view.get(client_id) is not None)
    finally:
        follower.stop()


def test_a_failing_turn_is_retried_at_the_interval_not_at_the_next_change(
    ledger: Ledger, listener: ChangeListener, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(log_changes, "SAFETY_INTERVAL", 60.0)
    view = ClientsView()
    follower = loaded_follower(ledger, view, listener.changes)
    failures: list[int] = []
    catch_up = follower.catch_up

    def fails_once() -> None:
        if not failures:
            failures.append(1)
            raise RuntimeError("the store went away for a moment")
        catch_up()

    monkeypatch.setattr(follower, "catch_up", fails_once)
    client_id = register(ledger, "retried")
    follower.start()  # its first turn fails; the retry must not wait for another change
    try:
        until(lambda: view.get(client_id) is not None)
        assert failures == [1]
    finally:
        follower.stop()
