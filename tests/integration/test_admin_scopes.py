"""Least privilege on the admin plane (issue 15): each admin scope permits one kind of command,
checked by the use case, and no narrower scope reaches the power of a wider one."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from api.bootstrap import Runtime
from api.settings import Settings
from domain.admin_scopes import CLIENTS, FULL, KEYS, READ, TOKENS
from tests.integration.helpers import basic, register, running


class Plane:
    """A running server and a way to sign in as an admin holding given scopes."""

    def __init__(self, http: AsyncTestClient[Any], runtime: Runtime) -> None:
        self.http, self.runtime = http, runtime

    async def token_for(self, *scopes: str) -> tuple[str, str]:
        """A new client holding `scopes`, and a token carrying all of them."""
        creds = await register(self.runtime, name="ops", allowed_scopes=list(scopes))
        response = await self.http.post(
            "/oauth2/token",
            content="grant_type=client_credentials",
            headers=basic(creds.client_id, creds.client_secret),
        )
        assert response.status_code == 200, response.text
        return creds.client_id, response.json()["access_token"]

    async def as_admin(self, token: str, method: str, path: str, **kwargs: Any) -> Any:
        headers = {"Authorization": f"Bearer {token}", **kwargs.pop("headers", {})}
        return await self.http.request(method, path, headers=headers, **kwargs)

    async def target(self, *scopes: str) -> str:
        creds = await register(self.runtime, name="billing", allowed_scopes=list(scopes) or ["a"])
        await asyncio.to_thread(self.runtime.follower.catch_up)
        return creds.client_id


@pytest.fixture
async def plane(settings: Settings) -> AsyncIterator[Plane]:
    async with running(settings) as (http, runtime):
        yield Plane(http, runtime)


def refused_for_scope(response: Any, scope: str) -> None:
    assert response.status_code == 403, response.text
    assert response.json()["error"] == "insufficient_scope"
    assert f'scope="{scope}"' in response.headers["www-authenticate"]


async def test_a_read_only_admin_reads_lists_history_and_analytics(plane: Plane) -> None:
    _, token = await plane.token_for(READ)
    client_id = await plane.target()
    for path in (
        "/admin/clients",
        f"/admin/clients/{client_id}",
        f"/admin/clients/{client_id}/history",
        "/admin/alerts",
        "/admin/analytics/clients",
        "/admin/analytics/top-clients",
    ):
        response = await plane.as_admin(token, "GET", path)
        assert response.status_code == 200, (path, response.text)


async def test_a_read_only_admin_changes_nothing(plane: Plane) -> None:
    _, token = await plane.token_for(READ)
    client_id = await plane.target()
    before = plane.runtime.admin.load(client_id).version
    attempts = [
        ("POST", "/admin/clients", {"json": {"name": "x", "allowed_scopes": ["a"]}}),
        ("PATCH", f"/admin/clients/{client_id}", {"json": {"name": "renamed"}}),
        ("POST", f"/admin/clients/{client_id}/secret/rotate", {}),
        ("POST", f"/admin/clients/{client_id}/suspend", {"json": {"reason": "x"}}),
        ("DELETE", f"/admin/clients/{client_id}", {}),
    ]
    for method, path, kwargs in attempts:
        refused_for_scope(await plane.as_admin(token, method, path, **kwargs), CLIENTS)
    revoke = await plane.as_admin(token, "POST", f"/admin/clients/{client_id}/tokens/revoke")
    refused_for_scope(revoke, TOKENS)
    assert plane.runtime.admin.load(client_id).version == before


async def test_client_management_registers_and_suspends_but_cannot_revoke_tokens(
    plane: Plane,
) -> None:
    _, token = await plane.token_for(CLIENTS)
    created = await plane.as_admin(
        token, "POST", "/admin/clients", json={"name": "svc", "allowed_scopes": ["a"]}
    )
    assert created.status_code == 201, created.text
    client_id = created.json()["client_id"]
    suspended = await plane.as_admin(
        token, "POST", f"/admin/clients/{client_id}/suspend", json={"reason": "rotation drill"}
    )
    assert suspended.status_code == 200, suspended.text
    revoke = await plane.as_admin(token, "POST", f"/admin/clients/{client_id}/tokens/revoke")
    refused_for_scope(revoke, TOKENS)


async def test_token_revocation_scope_voids_tokens_but_manages_no_client(plane: Plane) -> None:
    _, token = await plane.token_for(TOKENS)
    client_id = await plane.target()
    revoked = await plane.as_admin(
        token, "POST", f"/admin/clients/{client_id}/tokens/revoke", json={"reason": "leak"}
    )
    assert revoked.status_code == 200, revoked.text
    assert revoked.json()["version"] == 2  # TokensRevoked recorded
    suspend = await plane.as_admin(
        token, "POST", f"/admin/clients/{client_id}/suspend", json={"reason": "x"}
    )
    refused_for_scope(suspend, CLIENTS)


async def test_client_management_cannot_grant_itself_an_admin_scope(plane: Plane) -> None:
    own_id, token = await plane.token_for(CLIENTS)
    await asyncio.to_thread(plane.runtime.follower.catch_up)
    grant = await plane.as_admin(
        token, "PATCH", f"/admin/clients/{own_id}", json={"allowed_scopes": [CLIENTS, FULL]}
    )
    refused_for_scope(grant, FULL)
    assert FULL not in plane.runtime.admin.load(own_id).allowed_scopes


async def test_client_management_cannot_register_an_admin_client(plane: Plane) -> None:
    _, token = await plane.token_for(CLIENTS)
    for scope in (FULL, READ, KEYS):
        created = await plane.as_admin(
            token, "POST", "/admin/clients", json={"name": "backdoor", "allowed_scopes": [scope]}
        )
        refused_for_scope(created, FULL)


async def test_client_management_cannot_take_over_an_admin_by_rotating_its_secret(
    plane: Plane,
) -> None:
    full_admin_id, _ = await plane.token_for(FULL)
    _, token = await plane.token_for(CLIENTS)
    await asyncio.to_thread(plane.runtime.follower.catch_up)
    for method, path in (
        ("POST", f"/admin/clients/{full_admin_id}/secret/rotate"),
        ("DELETE", f"/admin/clients/{full_admin_id}"),
    ):
        refused_for_scope(await plane.as_admin(token, method, path), FULL)
    assert plane.runtime.admin.load(full_admin_id).secret_generation == 1


async def test_the_full_scope_may_grant_admin_scopes(plane: Plane) -> None:
    _, token = await plane.token_for(FULL)
    client_id = await plane.target()
    grant = await plane.as_admin(
        token, "PATCH", f"/admin/clients/{client_id}", json={"allowed_scopes": [READ]}
    )
    assert grant.status_code == 200, grant.text
    assert plane.runtime.admin.load(client_id).allowed_scopes == [READ]


async def test_a_token_without_any_admin_scope_is_refused_at_the_door(plane: Plane) -> None:
    _, token = await plane.token_for("invoices:read")
    refused_for_scope(await plane.as_admin(token, "GET", "/admin/clients"), READ)


async def test_an_admin_scope_taken_away_stops_counting_at_once(plane: Plane) -> None:
    _full_id, full_token = await plane.token_for(FULL)
    ops_id, ops_token = await plane.token_for(CLIENTS, READ)
    await asyncio.to_thread(plane.runtime.follower.catch_up)
    demote = await plane.as_admin(
        full_token, "PATCH", f"/admin/clients/{ops_id}", json={"allowed_scopes": [READ]}
    )
    assert demote.status_code == 200, demote.text
    register_now = await plane.as_admin(
        ops_token, "POST", "/admin/clients", json={"name": "svc", "allowed_scopes": ["a"]}
    )
    refused_for_scope(register_now, CLIENTS)
    assert (await plane.as_admin(ops_token, "GET", "/admin/clients")).status_code == 200
