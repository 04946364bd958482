"""Rotation, suspension, scope changes, deletion and history against a real store."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from adapters.clock import FixedClock
from api.bootstrap import Runtime
from api.settings import Settings
from api.usecases.client_admin import (
    ClientAdmin,
    ClientChanges,
    ClientNotFound,
    NewCredentials,
    register_client,
)
from domain.admin_scopes import Admin
from domain.client_settings import ClientSettings, InvalidClientSettings
from tests.integration.helpers import basic, running

START = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)


async def token(http: Any, client_id: str, secret: str, scope: str | None = None) -> Any:
    body = "grant_type=client_credentials" + (f"&scope={scope}" if scope else "")
    return await http.post("/oauth2/token", content=body, headers=basic(client_id, secret))


async def settle(runtime: Runtime) -> None:
    """Let the follower fold what was just written (DESIGN.md allows 1 s; we poll 20 ms)."""
    await asyncio.to_thread(runtime.follower.catch_up)


def admin(runtime: Runtime, clock: FixedClock) -> ClientAdmin:
    return ClientAdmin(runtime.ledger, runtime.hasher, clock)


async def registered(runtime: Runtime, clock: FixedClock) -> NewCredentials:
    settings = ClientSettings.create(name="job", allowed_scopes=["a", "b"], default_scopes=["a"])
    created = register_client(runtime.ledger, runtime.hasher, clock, settings, actor="test")
    await settle(runtime)
    return created


async def test_the_old_secret_works_through_the_grace_period_then_stops(settings: Settings) -> None:
    clock = FixedClock(START)
    async with running(settings, clock) as (http, runtime):
        old = await registered(runtime, clock)
        new = admin(runtime, clock).rotate_secret(
            old.client_id, grace=timedelta(hours=1), by=Admin.installation("t")
        )
        await settle(runtime)
        assert (await token(http, old.client_id, old.client_secret)).status_code == 200
        assert (await token(http, new.client_id, new.client_secret)).status_code == 200
        clock.advance(3600)
        assert (await token(http, old.client_id, old.client_secret)).status_code == 401
        assert (await token(http, new.client_id, new.client_secret)).status_code == 200


async def test_revoking_the_previous_secret_stops_it_at_once(settings: Settings) -> None:
    clock = FixedClock(START)
    async with running(settings, clock) as (http, runtime):
        old = await registered(runtime, clock)
        new = admin(runtime, clock).rotate_secret(old.client_id, by=Admin.installation("t"))
        admin(runtime, clock).revoke_previous_secret(
            old.client_id, by=Admin.installation("t"), reason=None
        )
        await settle(runtime)
        assert (await token(http, old.client_id, old.client_secret)).status_code == 401
        assert (await token(http, new.client_id, new.client_secret)).status_code == 200


async def test_a_suspended_client_is_refused_until_reactivated(settings: Settings) -> None:
    clock = FixedClock(START)
    async with running(settings, clock) as (http, runtime):
        c = await registered(runtime, clock)
        a = admin(runtime, clock)
        a.suspend(c.client_id, by=Admin.installation("t"), reason="leak")
        await settle(runtime)
        refused = await token(http, c.client_id, c.client_secret)
        assert (refused.status_code, refused.json()["error"]) == (401, "invalid_client")
        a.reactivate(c.client_id, by=Admin.installation("t"), reason=None)
        await settle(runtime)
        assert (await token(http, c.client_id, c.client_secret)).status_code == 200


async def test_a_deleted_client_never_authenticates_again(settings: Settings) -> None:
    clock = FixedClock(START)
    async with running(settings, clock) as (http, runtime):
        c = await registered(runtime, clock)
        admin(runtime, clock).delete(c.client_id, by=Admin.installation("t"), reason=None)
        await settle(runtime)
        assert (await token(http, c.client_id, c.client_secret)).status_code == 401


async def test_changed_scopes_and_lifetime_apply_to_the_next_token(settings: Settings) -> None:
    clock = FixedClock(START)
    async with running(settings, clock) as (http, runtime):
        c = await registered(runtime, clock)
        a = admin(runtime, clock)
        a.update(
            c.client_id,
            ClientChanges(allowed_scopes=["b", "c"], default_scopes=["c"]),
            by=Admin.installation("t"),
            reason=None,
        )
        a.update(c.client_id, ClientChanges(token_ttl=900), by=Admin.installation("t"), reason=None)
        await settle(runtime)
        assert (await token(http, c.client_id, c.client_secret, "a")).json()[
            "error"
        ] == "invalid_scope"
        granted = (await token(http, c.client_id, c.client_secret)).json()
        assert (granted["scope"], granted["expires_in"]) == ("c", 900)


async def test_the_state_at_an_earlier_time_is_what_it_was_then(settings: Settings) -> None:
    clock = FixedClock(START)
    async with running(settings, clock) as (_, runtime):
        c = await registered(runtime, clock)
        a = admin(runtime, clock)
        clock.advance(60)
        a.suspend(c.client_id, by=Admin.installation("t"), reason="leak")
        clock.advance(60)
        a.update(
            c.client_id,
            ClientChanges(allowed_scopes=["z"]),
            by=Admin.installation("t"),
            reason=None,
        )
        reader = Admin.installation("t")
        assert a.state_at(c.client_id, START + timedelta(seconds=30), by=reader).status == "active"
        then = a.state_at(c.client_id, START + timedelta(seconds=90), by=reader)
        assert (then.status, then.allowed_scopes) == ("suspended", frozenset({"a", "b"}))
        await settle(runtime)
        assert a.state_at(c.client_id, clock.now(), by=reader) == runtime.view.get(c.client_id)
        with pytest.raises(ClientNotFound):
            a.state_at(c.client_id, START - timedelta(seconds=1), by=reader)
        with pytest.raises(InvalidClientSettings, match="future"):
            a.state_at(c.client_id, clock.now() + timedelta(seconds=1), by=reader)


async def test_history_says_who_changed_what_when_and_why_without_secrets(
    settings: Settings,
) -> None:
    clock = FixedClock(START)
    async with running(settings, clock) as (_, runtime):
        c = await registered(runtime, clock)
        a = admin(runtime, clock)
        clock.advance(10)
        a.rotate_secret(
            c.client_id, grace=timedelta(0), by=Admin.installation("admin-1"), reason="quarterly"
        )
        entries = a.history(c.client_id, by=Admin.installation("admin-1"))
        assert [e["event"] for e in entries] == ["registered", "secret_rotated"]
        rotated = entries[1]
        assert (rotated["actor"], rotated["reason"]) == ("admin-1", "quarterly")
        assert rotated["at"] == (START + timedelta(seconds=10)).isoformat()
        assert rotated["changes"]["generation"] == 2
        assert "hmac-sha256" not in json.dumps(entries)
