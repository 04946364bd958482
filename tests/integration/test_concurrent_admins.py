"""Two admins change one client at once: one wins, the other gets a conflict, nothing is lost."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from uuid import UUID

import pytest

from adapters.client_secrets import SecretHasher
from adapters.clock import SystemClock
from adapters.event_store import Ledger
from api.usecases.client_admin import ClientAdmin, ConcurrentChange, NewCredentials
from domain.admin_scopes import Admin
from domain.client import Client
from domain.client_settings import ClientSettings

HASHER = SecretHasher(b"p" * 32)


class RacingLedger(Ledger):
    """A real ledger whose loads wait for each other, so both admins read the same version."""

    name = Ledger.name  # eventsourcing names tables after the application

    def __init__(self, url: str, barrier: threading.Barrier) -> None:
        super().__init__(url)
        self._barrier = barrier

    def get_client(self, client_id: UUID) -> Client | None:
        client = super().get_client(client_id)
        self._barrier.wait(timeout=10)
        return client


def _register(url: str) -> str:
    ledger = Ledger(url)
    try:
        settings = ClientSettings.create(name="job", allowed_scopes=["a"])
        return (
            ClientAdmin(ledger, HASHER, SystemClock())
            .register(settings, by=Admin.installation("t"))
            .client_id
        )
    finally:
        ledger.close()


def test_two_admins_rotating_at_once_one_succeeds_and_one_conflicts(postgres_url: str) -> None:
    client_id = _register(postgres_url)
    barrier = threading.Barrier(2)
    ledgers = [RacingLedger(postgres_url, barrier) for _ in range(2)]
    try:
        admins = [ClientAdmin(ledger, HASHER, SystemClock()) for ledger in ledgers]

        def rotate(admin: ClientAdmin) -> NewCredentials | ConcurrentChange:
            try:
                return admin.rotate_secret(client_id, by=Admin.installation("admin"), reason="race")
            except ConcurrentChange as conflict:
                return conflict

        with ThreadPoolExecutor(2) as pool:
            outcomes = list(pool.map(rotate, admins))
        winners = [o for o in outcomes if isinstance(o, NewCredentials)]
        assert len(winners) == 1
        assert sum(isinstance(o, ConcurrentChange) for o in outcomes) == 1
        client = Ledger.get_client(ledgers[0], UUID(client_id))
        assert client is not None
        assert client.secret_generation == 2
        assert HASHER.matches(winners[0].client_secret, client.secrets[0].secret_hash)
    finally:
        for ledger in ledgers:
            ledger.close()


@pytest.mark.parametrize("threads", [4])
def test_concurrent_rotations_never_lose_a_secret(postgres_url: str, threads: int) -> None:
    client_id = _register(postgres_url)
    ledger = Ledger(postgres_url)
    try:
        admin = ClientAdmin(ledger, HASHER, SystemClock())

        def rotate(_: int) -> NewCredentials | None:
            try:
                return admin.rotate_secret(client_id, by=Admin.installation("admin"))
            except ConcurrentChange:
                return None

        with ThreadPoolExecutor(threads) as pool:
            results = list(pool.map(rotate, range(40)))
        wins = [r for r in results if r is not None]
        generations = [
            e["changes"]["generation"]
            for e in admin.history(client_id, by=Admin.installation("admin"))[1:]
        ]
        assert generations == list(range(2, 2 + len(wins)))
        assert sorted(w.generation for w in wins) == generations
        current = admin.load(client_id).secrets[0]
        [latest] = [w for w in wins if w.generation == current.generation]
        assert HASHER.matches(latest.client_secret, current.secret_hash)
    finally:
        ledger.close()
