"""The clients read model: memory and durable table agree, stale writers cannot regress it."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import jwt

from adapters.event_store import Ledger
from adapters.projection_tables import clients_table
from api.settings import Settings
from api.usecases.client_admin import current_clients
from domain.client_record import ClientRecord
from projections.clients import ClientsFollower, ClientsView
from tests.integration.helpers import basic, register, running, stored_token

NOW = datetime(2026, 11, 20, tzinfo=UTC)


def _record(client_id: str, name: str) -> ClientRecord:
    return ClientRecord(
        client_id=client_id,
        name=name,
        status="active",
        allowed_scopes=frozenset({"a"}),
        default_scopes=frozenset({"a"}),
        token_ttl=300,
        audiences=(),
        secrets=(),
        version=1,
        registered_at=NOW,
        updated_at=NOW,
    )


def test_a_writer_behind_the_table_cannot_overwrite_newer_rows(database_url: str) -> None:
    ledger = Ledger(database_url)
    try:
        table = clients_table(ledger.datastore)
        assert table.write([_record("c1", "newer")], position=10)
        assert not table.write([_record("c1", "older")], position=5)
        assert not table.write([_record("c1", "same position")], position=10)
        records, position = table.load()
        assert position == 10
        assert [r.name for r in records] == ["newer"]
    finally:
        ledger.close()


async def test_the_durable_table_holds_what_the_live_view_holds(settings: Settings) -> None:
    async with running(settings) as (_, runtime):
        for i in range(5):
            await register(runtime, name=f"client-{i}")
        runtime.follower.catch_up()
        records, position = clients_table(runtime.ledger.datastore).load()
        assert sorted(records, key=lambda r: r.client_id) == sorted(
            runtime.view.all(), key=lambda r: r.client_id
        )
        assert position == runtime.view.position


async def test_a_new_process_starts_from_the_table_and_catches_up(settings: Settings) -> None:
    async with running(settings) as (_, runtime):
        first = await register(runtime, name="before")
        runtime.follower.catch_up()
        second = await register(runtime, name="after")  # in the log; maybe not yet in the table
        fresh = ClientsView()
        ClientsFollower(runtime.ledger, clients_table(runtime.ledger.datastore), fresh).load()
        assert fresh.get(first.client_id) == runtime.view.get(first.client_id)
        assert fresh.get(second.client_id) == runtime.view.get(second.client_id)


async def test_two_followers_on_one_store_converge(settings: Settings) -> None:
    async with running(settings) as (_, runtime):
        other_ledger = Ledger(settings.database_url)
        try:
            other = ClientsFollower(
                other_ledger, clients_table(other_ledger.datastore), ClientsView(), interval=0.01
            )
            other.load()
            other.start()
            created = [await register(runtime, name=f"c{i}") for i in range(10)]
            await asyncio.sleep(0.2)
            other.stop()
            other.catch_up()
            runtime.follower.catch_up()
            for c in created:
                assert other.view.get(c.client_id) == runtime.view.get(c.client_id)
            assert sorted(current_clients(other_ledger).all(), key=lambda r: r.client_id) == sorted(
                runtime.view.all(), key=lambda r: r.client_id
            )
        finally:
            other_ledger.close()


async def test_concurrent_token_requests_each_return_after_their_own_commit(
    settings: Settings,
) -> None:
    async with running(settings) as (http, runtime):
        creds = await register(runtime)
        headers = basic(creds.client_id, creds.client_secret)

        async def one() -> None:
            response = await http.post(
                "/oauth2/token", content="grant_type=client_credentials", headers=headers
            )
            assert response.status_code == 200, response.text
            jti = jwt.decode(response.json()["access_token"], options={"verify_signature": False})[
                "jti"
            ]
            assert stored_token(runtime, jti).client_id == creds.client_id

        await asyncio.gather(*(one() for _ in range(100)))
        assert runtime.committer.saved == 100
