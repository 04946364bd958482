"""`projections rebuild` and point-in-time copies against both event stores, with the
application serving (and its follower writing) throughout."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from adapters.clock import SystemClock
from adapters.named_lock import exclusive
from adapters.projection_rebuild import RebuildTables
from adapters.projection_tables import clients_table
from api.settings import Settings
from api.usecases.client_admin import ClientAdmin
from api.usecases.projection_rebuild import (
    RebuildRefused,
    copies,
    copy_records,
    copy_until,
    drop_copy,
    rebuild,
)
from domain.admin_scopes import Admin
from tests.integration.helpers import basic, register, running, wait_for_client

pytestmark = pytest.mark.asyncio
TOKEN = {"grant_type": "client_credentials"}


def no_progress(done: int, head: int) -> None:
    pass


async def table_caught_up(runtime, within: float = 2.0) -> None:  # type: ignore[no-untyped-def]
    """The serving process's follower has written everything to the durable table."""
    async with asyncio.timeout(within):
        while clients_table(runtime.ledger.datastore).position() < runtime.ledger.head():  # noqa: ASYNC110 - a thread writes it
            await asyncio.sleep(0.02)


async def test_a_rebuild_writes_the_table_the_live_follower_wrote(settings: Settings) -> None:
    async with running(settings) as (_, runtime):
        first = await register(runtime)
        second = await register(runtime, name="other")
        admin = ClientAdmin(runtime.ledger, runtime.hasher, SystemClock())
        admin.suspend(second.client_id, by=Admin.installation("t"), reason="r")
        admin.rotate_secret(first.client_id, grace=timedelta(hours=1), by=Admin.installation("t"))
        await table_caught_up(runtime)
        before, _ = clients_table(runtime.ledger.datastore).load()

        report = rebuild(runtime.ledger, "clients", no_progress)

        after, position = clients_table(runtime.ledger.datastore).load()
        assert sorted(after, key=lambda r: r.client_id) == sorted(before, key=lambda r: r.client_id)
        assert (report.events, report.records) == (5, 2)  # a suspension records its cut-off too
        assert position == report.position == runtime.ledger.head()


async def test_serving_and_following_go_on_through_a_rebuild(settings: Settings) -> None:
    async with running(settings) as (client, runtime):
        created = await register(runtime)
        rebuilding = asyncio.to_thread(rebuild, runtime.ledger, "clients", no_progress)
        tokens = [
            client.post(
                "/oauth2/token", data=TOKEN, headers=basic(created.client_id, created.client_secret)
            )
            for _ in range(20)
        ]
        results = await asyncio.gather(rebuilding, *tokens)
        assert [r.status_code for r in results[1:]] == [200] * 20
        later = await register(runtime, name="after-the-swap")
        await table_caught_up(runtime)
        stored, _ = clients_table(runtime.ledger.datastore).load()
        assert {r.client_id for r in stored} == {created.client_id, later.client_id}


async def test_a_second_rebuild_of_one_projection_is_refused(settings: Settings) -> None:
    async with running(settings) as (_, runtime):
        with exclusive(settings.database_url, "rebuild-clients") as held:
            assert held
            with pytest.raises(RebuildRefused, match="already running"):
                rebuild(runtime.ledger, "clients", no_progress)
            rebuild(runtime.ledger, "revoked-tokens", no_progress)  # another projection may


async def test_a_copy_holds_every_client_as_it_was_at_that_moment(settings: Settings) -> None:
    async with running(settings) as (_, runtime):
        early = await register(runtime, name="early")
        await asyncio.sleep(0.01)
        moment = datetime.now(UTC)
        await asyncio.sleep(0.01)
        admin = ClientAdmin(runtime.ledger, runtime.hasher, SystemClock())
        admin.suspend(early.client_id, by=Admin.installation("t"), reason="r")
        await register(runtime, name="late")

        report = copy_until(runtime.ledger, "clients", moment, datetime.now(UTC), no_progress)

        assert report.copy is not None
        copied = copy_records(runtime.ledger, report.copy, "clients")
        assert copied == [admin.state_at(early.client_id, moment, by=Admin.installation("t"))]
        assert copied[0].status == "active"
        assert [c["name"] for c in copies(runtime.ledger)] == [report.copy]
        assert runtime.view.get(early.client_id).status == "suspended"  # the live model moved on


async def test_copies_refuse_the_future_a_duplicate_and_unknown_names(settings: Settings) -> None:
    async with running(settings) as (_, runtime):
        await register(runtime)
        now = datetime.now(UTC)
        with pytest.raises(RebuildRefused, match="future"):
            copy_until(runtime.ledger, "clients", now + timedelta(minutes=1), now, no_progress)
        made = copy_until(runtime.ledger, "clients", now, now, no_progress)
        assert made.copy is not None
        with pytest.raises(RebuildRefused, match="exists"):
            copy_until(runtime.ledger, "clients", now, now, no_progress)
        with pytest.raises(RebuildRefused, match="no copy named"):
            copy_records(runtime.ledger, "clients@19700101T000000Z", "clients")
        with pytest.raises(RebuildRefused, match="not of revoked-tokens"):
            copy_records(runtime.ledger, made.copy, "revoked-tokens")
        with pytest.raises(RebuildRefused, match="no projection named"):
            rebuild(runtime.ledger, "tokens; DROP TABLE x", no_progress)


async def test_dropping_a_copy_removes_its_table_and_listing(settings: Settings) -> None:
    async with running(settings) as (_, runtime):
        created = await register(runtime)
        await wait_for_client(runtime, created.client_id)
        now = datetime.now(UTC)
        made = copy_until(runtime.ledger, "clients", now, now, no_progress)
        assert made.copy is not None
        drop_copy(runtime.ledger, made.copy)
        assert copies(runtime.ledger) == []
        with pytest.raises(Exception, match=made.table):
            RebuildTables(runtime.ledger).rows(made.table)
        with pytest.raises(RebuildRefused):
            drop_copy(runtime.ledger, made.copy)
