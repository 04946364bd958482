"""A URI whose host or port cannot be parsed (an unclosed IPv6 bracket, a bracketed name, a
port out of range) is bad input like any other: 422 at the admin API, `invalid_target` at
the token endpoint; never a 500, and nothing is written."""

from __future__ import annotations

import pytest

from api.settings import Settings
from domain.admin_scopes import FULL
from tests.integration.helpers import FORM, basic, register, running

MALFORMED = ["http://[::1", "http://[x]/", "https://h.example:99999/", "urn:a\x00b"]


@pytest.mark.parametrize("uri", MALFORMED)
async def test_a_malformed_audience_is_refused_at_the_admin_api(
    settings: Settings, uri: str
) -> None:
    async with running(settings) as (http, runtime):
        admin = await register(runtime, name="ops", allowed_scopes=[FULL])
        token = (
            await http.post(
                "/oauth2/token",
                content="grant_type=client_credentials",
                headers=basic(admin.client_id, admin.client_secret),
            )
        ).json()["access_token"]
        bearer = {"Authorization": f"Bearer {token}"}
        created = await http.post(
            "/admin/clients",
            json={"name": "x", "allowed_scopes": ["a"], "audiences": [uri]},
            headers=bearer,
        )
        assert created.status_code == 422, created.text
        assert created.json()["error"] == "invalid_request"
        changed = await http.patch(
            f"/admin/clients/{admin.client_id}", json={"audiences": [uri]}, headers=bearer
        )
        assert changed.status_code == 422, changed.text
        assert runtime.admin.load(admin.client_id).version == 1


@pytest.mark.parametrize("uri", MALFORMED[:3])
async def test_a_malformed_resource_is_invalid_target(settings: Settings, uri: str) -> None:
    async with running(settings) as (http, runtime):
        client = await register(runtime)
        response = await http.post(
            "/oauth2/token",
            content=f"grant_type=client_credentials&resource={uri}",
            headers={**basic(client.client_id, client.client_secret), **FORM},
        )
        assert response.status_code == 400, response.text
        assert response.json()["error"] == "invalid_target"
