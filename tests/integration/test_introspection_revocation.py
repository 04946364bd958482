"""RFC 7662 introspection and RFC 7009 revocation against a real store (issue 4)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from adapters.clock import FixedClock
from adapters.signing import JwtSigner, KeyRing
from api.bootstrap import Runtime
from api.settings import Settings
from api.usecases.client_admin import ClientAdmin, NewCredentials, register_client
from domain.admin_scopes import Admin
from domain.client_settings import ClientSettings
from tests.integration.helpers import FORM, basic, running

START = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)


class World:
    def __init__(self, http: AsyncTestClient[Any], runtime: Runtime, clock: FixedClock) -> None:
        self.http, self.runtime, self.clock = http, runtime, clock
        self.admin = ClientAdmin(runtime.ledger, runtime.hasher, clock)

    async def client(self, *scopes: str) -> NewCredentials:
        created = register_client(
            self.runtime.ledger,
            self.runtime.hasher,
            self.clock,
            ClientSettings.create(name="c", allowed_scopes=list(scopes or ("a",))),
            actor="t",
        )
        await self.settle()
        return created

    async def settle(self) -> None:
        await asyncio.to_thread(self.runtime.follower.catch_up)
        await asyncio.to_thread(self.runtime.revoked_follower.catch_up)

    async def token(self, c: NewCredentials) -> str:
        response = await self.http.post(
            "/oauth2/token",
            content="grant_type=client_credentials",
            headers=basic(c.client_id, c.client_secret),
        )
        token: str = response.json()["access_token"]
        return token

    async def introspect(self, caller: NewCredentials, body: str) -> Any:
        return await self.http.post(
            "/oauth2/introspect",
            content=body,
            headers=basic(caller.client_id, caller.client_secret),
        )

    async def active(self, caller: NewCredentials, token: str) -> dict[str, Any]:
        response = await self.introspect(caller, f"token={token}")
        assert response.status_code == 200, response.text
        assert response.headers["cache-control"] == "no-store"
        body: dict[str, Any] = response.json()
        return body

    async def revoke(self, c: NewCredentials, token: str) -> Any:
        return await self.http.post(
            "/oauth2/revoke", content=f"token={token}", headers=basic(c.client_id, c.client_secret)
        )


@pytest.fixture
async def world(settings: Settings) -> AsyncIterator[World]:
    clock = FixedClock(START)
    async with running(settings, clock) as (http, runtime):
        yield World(http, runtime, clock)


async def test_an_active_token_is_introspected_with_its_claims(world: World) -> None:
    rs = await world.client("keyledger:introspect")
    c = await world.client("a", "b")
    answer = await world.active(rs, await world.token(c))
    assert answer["active"] is True
    assert answer["client_id"] == answer["sub"] == c.client_id
    assert answer["scope"] == "a b"
    assert answer["token_type"] == "Bearer"
    assert answer["exp"] - answer["iat"] == 300
    assert {"aud", "iss", "jti"} <= answer.keys()


async def test_an_expired_token_is_inactive_the_moment_it_expires(world: World) -> None:
    rs, c = await world.client("keyledger:introspect"), await world.client()
    token = await world.token(c)
    world.clock.advance(299)
    assert (await world.active(rs, token))["active"] is True
    world.clock.advance(1)
    assert await world.active(rs, token) == {"active": False}


async def test_a_revoked_token_is_inactive_and_revoking_twice_writes_one_event(
    world: World,
) -> None:
    rs, c = await world.client("keyledger:introspect"), await world.client()
    token = await world.token(c)
    head = world.runtime.ledger.head()
    assert (await world.revoke(c, token)).status_code == 200
    assert world.runtime.ledger.head() == head + 1
    assert (await world.revoke(c, token)).status_code == 200
    assert world.runtime.ledger.head() == head + 1
    assert await world.active(rs, token) == {"active": False}


async def test_a_client_cannot_revoke_another_clients_token(world: World) -> None:
    rs, owner, other = (
        await world.client("keyledger:introspect"),
        await world.client(),
        await world.client(),
    )
    token = await world.token(owner)
    head = world.runtime.ledger.head()
    response = await world.revoke(other, token)
    assert (response.status_code, response.json()["error"]) == (400, "unauthorized_client")
    assert world.runtime.ledger.head() == head
    assert (await world.active(rs, token))["active"] is True


async def test_revoking_an_unknown_or_garbage_token_is_200_and_changes_nothing(
    world: World,
) -> None:
    c = await world.client()
    head = world.runtime.ledger.head()
    for token in ["garbage", "a.b.c", "x" * 5000]:
        assert (await world.revoke(c, token)).status_code == 200
    assert world.runtime.ledger.head() == head


@pytest.mark.parametrize("change", ["suspend", "delete", "revoke_all", "revoke_generation"])
async def test_client_level_events_void_its_tokens(world: World, change: str) -> None:
    rs, c = await world.client("keyledger:introspect"), await world.client()
    token = await world.token(c)
    t, now = Admin.installation("t"), world.clock.now()
    commands: dict[str, Callable[[str], object]] = {
        "suspend": lambda cid: world.admin.suspend(cid, by=t, reason="leak"),
        "delete": lambda cid: world.admin.delete(cid, by=t, reason=None),
        "revoke_all": lambda cid: world.admin.revoke_tokens(
            cid, by=t, cutoff=now, secret_generation=None, reason=None
        ),
        "revoke_generation": lambda cid: world.admin.revoke_tokens(
            cid, by=t, cutoff=now, secret_generation=1, reason=None
        ),
    }
    commands[change](c.client_id)
    await world.settle()
    assert await world.active(rs, token) == {"active": False}


async def test_tokens_of_another_secret_generation_survive_its_revocation(world: World) -> None:
    rs, c = await world.client("keyledger:introspect"), await world.client()
    rotated = world.admin.rotate_secret(c.client_id, by=Admin.installation("t"))
    await world.settle()
    world.clock.advance(5)
    new_token = await world.token(rotated)
    world.admin.revoke_tokens(
        c.client_id,
        by=Admin.installation("t"),
        cutoff=world.clock.now(),
        secret_generation=1,
        reason=None,
    )
    await world.settle()
    assert (await world.active(rs, new_token))["active"] is True


async def test_a_foreign_or_forged_token_is_inactive(world: World, tmp_path: Path) -> None:
    rs = await world.client("keyledger:introspect")
    foreign = JwtSigner(KeyRing.load(tmp_path / "other", "ES256")).sign(
        {
            "iss": "https://auth.example.test",
            "aud": "x",
            "sub": "s",
            "client_id": "s",
            "iat": int(START.timestamp()),
            "exp": int(START.timestamp()) + 300,
            "jti": "j",
        }
    )
    real = await world.token(await world.client())
    header, payload, signature = real.split(".")
    tampered = f"{header}.{payload}.{signature[:-4]}AAAA"
    for token in [foreign, tampered, "garbage", "x" * 1_000]:
        assert await world.active(rs, token) == {"active": False}


async def test_a_token_type_hint_is_accepted_and_never_trusted(world: World) -> None:
    rs, c = await world.client("keyledger:introspect"), await world.client()
    token = await world.token(c)
    response = await world.introspect(rs, f"token={token}&token_type_hint=refresh_token")
    assert response.json()["active"] is True


async def test_introspection_needs_an_authenticated_caller_with_the_right(world: World) -> None:
    c = await world.client()
    token = await world.token(c)
    unauthenticated = await world.http.post(
        "/oauth2/introspect", content=f"token={token}", headers=FORM
    )
    assert (unauthenticated.status_code, unauthenticated.json()["error"]) == (401, "invalid_client")
    no_right = await world.introspect(c, f"token={token}")
    assert (no_right.status_code, no_right.json()["error"]) == (403, "unauthorized_client")


@pytest.mark.parametrize("body", ["", "token_type_hint=access_token", "token=a&token=b"])
async def test_a_missing_or_repeated_token_parameter_is_invalid_request(
    world: World, body: str
) -> None:
    rs = await world.client("keyledger:introspect")
    response = await world.introspect(rs, body)
    assert (response.status_code, response.json()["error"]) == (400, "invalid_request")


async def test_a_huge_token_is_refused_without_a_500(world: World) -> None:
    rs = await world.client("keyledger:introspect")
    response = await world.introspect(rs, "token=" + "a" * 1_000_000)
    assert (response.status_code, response.json()["error"]) == (413, "invalid_request")


async def test_metadata_lists_introspection_and_revocation(world: World) -> None:
    meta = (await world.http.get("/.well-known/oauth-authorization-server")).json()
    assert meta["introspection_endpoint"].endswith("/oauth2/introspect")
    assert meta["revocation_endpoint"].endswith("/oauth2/revoke")
    assert "client_secret_basic" in meta["introspection_endpoint_auth_methods_supported"]


async def test_an_admin_revokes_and_inspects_one_token(world: World) -> None:
    from api.usecases.client_admin import ADMIN_SCOPE

    rs, c = await world.client("keyledger:introspect"), await world.client()
    ops = await world.client(ADMIN_SCOPE)
    bearer = {"Authorization": f"Bearer {await world.token(ops)}"}
    token = await world.token(c)
    jti = (await world.active(rs, token))["jti"]
    shown = (await world.http.get(f"/admin/tokens/{jti}", headers=bearer)).json()
    assert (shown["client_id"], shown["secret_generation"], shown["revoked_at"]) == (
        c.client_id,
        1,
        None,
    )
    revoked = await world.http.post(
        f"/admin/tokens/{jti}/revoke", json={"reason": "leaked in logs"}, headers=bearer
    )
    assert revoked.json()["revoked_now"] is True
    assert [h["event"] for h in revoked.json()["history"]] == ["issued", "revoked"]
    assert revoked.json()["history"][-1]["actor"] == ops.client_id
    again = await world.http.post(f"/admin/tokens/{jti}/revoke", headers=bearer)
    assert again.json()["revoked_now"] is False
    assert await world.active(rs, token) == {"active": False}
    missing = await world.http.get("/admin/tokens/no-such-jti", headers=bearer)
    assert (missing.status_code, missing.json()["error"]) == (404, "not_found")
    assert missing.json()["error_description"] == "no token with jti no-such-jti"


async def test_revocations_are_forgotten_once_their_tokens_expire(world: World) -> None:
    c = await world.client()
    token = await world.token(c)
    await world.revoke(c, token)
    await world.settle()
    assert len(world.runtime.revoked_view._revoked) == 1
    world.clock.advance(301)
    world.runtime.revoked_follower._pruned_at = None  # due now
    await world.settle()
    assert len(world.runtime.revoked_view._revoked) == 0


async def test_binary_garbage_as_a_token_is_a_clear_error(world: World) -> None:
    rs = await world.client("keyledger:introspect")
    response = await world.introspect(rs, "token=%00%ff%fe%80")
    assert (response.status_code, response.json()["error"]) == (400, "invalid_request")
    ascii_garbage = await world.introspect(rs, "token=%00%01%02abc")
    assert ascii_garbage.json() == {"active": False}
