"""Signing keys through the admin API (issue 15): listed with any admin scope, rotated with
`keyledger:admin:keys` by the server itself, and known to the serving replica at once."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

import jwt
import pytest
from litestar.testing import AsyncTestClient

from api.bootstrap import Runtime
from api.settings import Settings
from domain.admin_scopes import KEYS, READ
from domain.signing_keys import SigningKeys
from tests.integration.helpers import basic, register, running


async def token_for(http: AsyncTestClient[Any], runtime: Runtime, *scopes: str) -> tuple[str, str]:
    """A new client holding `scopes`, and a bearer header carrying all of them."""
    creds = await register(runtime, name="ops", allowed_scopes=list(scopes))
    response = await http.post(
        "/oauth2/token",
        content="grant_type=client_credentials",
        headers=basic(creds.client_id, creds.client_secret),
    )
    assert response.status_code == 200, response.text
    return creds.client_id, response.json()["access_token"]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def published(jwks: Any) -> set[str]:
    return {k["kid"] for k in jwks.json()["keys"]}


def key_events(runtime: Runtime) -> list[Any]:
    return runtime.ledger.signing_key_events(0)


async def test_a_rotation_through_the_api_is_published_and_listed_before_the_answer_returns(
    settings: Settings,
) -> None:
    async with running(settings) as (http, runtime):
        admin_id, token = await token_for(http, runtime, KEYS)
        [first] = published(await http.get("/oauth2/jwks"))
        rotated = await http.post(
            "/admin/keys/rotate",
            json={"delay": "10m", "reason": "quarterly"},
            headers=bearer(token),
        )
        assert rotated.status_code == 201, rotated.text
        assert rotated.headers["cache-control"] == "no-store"
        key = rotated.json()["key"]
        assert (key["status"], key["alg"], key["retires_at"]) == ("pending", "ES256", None)
        # No wait: the replica that answered has the key in its ring already.
        assert published(await http.get("/oauth2/jwks")) == {first, key["kid"]}
        listed = await http.get("/admin/keys", headers=bearer(token))
        assert listed.status_code == 200, listed.text
        rows = listed.json()["keys"]
        assert [(r["kid"], r["status"]) for r in rows] == [
            (first, "active"),
            (key["kid"], "pending"),
        ]
        assert rows[0]["retires_at"] == key["activates_at"]
        generated, retired = key_events(runtime)[-2:]
        assert isinstance(generated, SigningKeys.KeyGenerated)
        assert isinstance(retired, SigningKeys.KeyRetired)
        assert (generated.actor, generated.reason) == (admin_id, "quarterly")
        assert retired.actor == admin_id


async def test_a_rotation_without_delay_signs_the_very_next_token_with_the_new_key(
    settings: Settings,
) -> None:
    async with running(settings) as (http, runtime):
        _, token = await token_for(http, runtime, KEYS)
        rotated = await http.post("/admin/keys/rotate", json={"delay": 0}, headers=bearer(token))
        assert rotated.status_code == 201, rotated.text
        assert rotated.json()["key"]["status"] == "active"
        _, next_token = await token_for(http, runtime, "invoices:read")
        assert jwt.get_unverified_header(next_token)["kid"] == rotated.json()["key"]["kid"]
        # The admin token the old key signed still works: the old key stays published.
        assert (await http.get("/admin/keys", headers=bearer(token))).status_code == 200


async def test_without_a_body_the_new_key_waits_the_configured_pre_publication_delay(
    settings: Settings,
) -> None:
    async with running(replace(settings, key_prepublish_seconds=3600)) as (http, runtime):
        _, token = await token_for(http, runtime, KEYS)
        rotated = await http.post("/admin/keys/rotate", headers=bearer(token))
        assert rotated.status_code == 201, rotated.text
        keys = runtime.ledger.get_signing_keys()
        assert keys is not None
        new = keys.keys[-1]
        assert (new.activates_at - new.generated_at).total_seconds() == 3600


async def test_a_read_only_admin_lists_the_keys_but_may_not_rotate_them(
    settings: Settings,
) -> None:
    async with running(settings) as (http, runtime):
        _, token = await token_for(http, runtime, READ)
        listed = await http.get("/admin/keys", headers=bearer(token))
        assert listed.status_code == 200, listed.text
        assert [r["status"] for r in listed.json()["keys"]] == ["active"]
        before = len(key_events(runtime))
        refused = await http.post("/admin/keys/rotate", json={}, headers=bearer(token))
        assert refused.status_code == 403, refused.text
        assert refused.json()["error"] == "insufficient_scope"
        assert 'scope="keyledger:admin:keys"' in refused.headers["www-authenticate"]
        assert len(key_events(runtime)) == before


async def test_a_client_without_an_admin_scope_neither_lists_nor_rotates(
    settings: Settings,
) -> None:
    async with running(settings) as (http, runtime):
        _, token = await token_for(http, runtime, "invoices:read")
        for method, path in (("GET", "/admin/keys"), ("POST", "/admin/keys/rotate")):
            response = await http.request(method, path, headers=bearer(token))
            assert response.status_code == 403, (path, response.text)


@pytest.mark.parametrize(
    ("body", "status", "description"),
    [
        ({"delay": "soon"}, 422, "not a duration"),
        ({"delay": "-5s"}, 422, "not a duration"),
        ({"delay": -5}, 422, "not a duration"),
        ({"delay": "31d"}, 422, "0 seconds to 30 days"),
        ({"delay": "999999999d"}, 422, "0 seconds to 30 days"),  # would overflow a datetime
        ({"delay": 1.5}, 400, ""),
        ({"delay": True}, 400, ""),
        ({"when": "1h"}, 400, ""),
        ({"reason": "x" * 1001}, 400, ""),
    ],
)
async def test_a_bad_rotation_request_is_refused_clearly_and_writes_nothing(
    settings: Settings, body: dict[str, Any], status: int, description: str
) -> None:
    async with running(settings) as (http, runtime):
        _, token = await token_for(http, runtime, KEYS)
        before = len(key_events(runtime))
        response = await http.post("/admin/keys/rotate", json=body, headers=bearer(token))
        assert response.status_code == status, response.text
        assert response.json()["error"] == "invalid_request"
        assert description in response.json()["error_description"]
        assert len(key_events(runtime)) == before


async def test_a_second_rotation_while_a_key_is_pending_is_a_conflict(settings: Settings) -> None:
    async with running(settings) as (http, runtime):
        _, token = await token_for(http, runtime, KEYS)
        first = await http.post("/admin/keys/rotate", json={"delay": "1h"}, headers=bearer(token))
        assert first.status_code == 201, first.text
        before = len(key_events(runtime))
        again = await http.post("/admin/keys/rotate", json={"delay": "1h"}, headers=bearer(token))
        assert again.status_code == 409, again.text
        assert again.json()["error"] == "conflict"
        assert "already waiting to sign" in again.json()["error_description"]
        assert len(key_events(runtime)) == before


async def test_another_replica_publishes_a_key_rotated_through_the_api_within_a_second(
    postgres_url: str, settings: Settings
) -> None:
    shared = replace(settings, database_url=postgres_url)
    async with running(shared) as (one, first), running(shared) as (other, _):
        _, token = await token_for(one, first, KEYS)
        rotated = await one.post("/admin/keys/rotate", json={"delay": "10m"}, headers=bearer(token))
        assert rotated.status_code == 201, rotated.text
        kid = rotated.json()["key"]["kid"]
        async with asyncio.timeout(1.0):
            while kid not in published(await other.get("/oauth2/jwks")):  # noqa: ASYNC110
                await asyncio.sleep(0.02)
