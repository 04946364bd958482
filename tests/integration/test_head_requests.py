"""HEAD is answered wherever GET is, as RFC 9110 §9.3.2 asks: the GET's status and header
fields, no content; guarded, routed and counted as the GET is (the real app, a real store)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from api.settings import Settings
from domain.admin_scopes import FULL
from tests.integration.helpers import basic, register, running

PUBLIC = ["/healthz", "/.well-known/oauth-authorization-server", "/oauth2/jwks"]
VARYING = {"date", "x-request-id"}  # per response, whatever the method


def fields(response: httpx.Response) -> dict[str, str]:
    return {k: v for k, v in response.headers.items() if k not in VARYING}


async def admin_bearer(http: Any, runtime: Any) -> dict[str, str]:
    admin = await register(runtime, name="ops", allowed_scopes=[FULL])
    answer = await http.post(
        "/oauth2/token",
        content="grant_type=client_credentials",
        headers=basic(admin.client_id, admin.client_secret),
    )
    return {"Authorization": f"Bearer {answer.json()['access_token']}"}


@pytest.mark.parametrize("path", PUBLIC)
async def test_head_answers_a_get_route_with_its_status_and_fields_and_no_content(
    settings: Settings, path: str
) -> None:
    async with running(settings) as (http, _):
        got = await http.get(path)
        head = await http.head(path)
    assert head.status_code == got.status_code == 200
    assert fields(head) == fields(got)
    assert int(head.headers["content-length"]) == len(got.content) > 0
    assert head.content == b""


async def test_head_on_the_admin_api_is_guarded_as_get_is(settings: Settings) -> None:
    async with running(settings) as (http, runtime):
        refused = await http.head("/admin/clients")
        bearer = await admin_bearer(http, runtime)
        listed = await http.head("/admin/clients", headers=bearer)
        got = await http.get("/admin/clients", headers=bearer)
    assert refused.status_code == 401
    assert listed.status_code == 200
    assert int(listed.headers["content-length"]) == len(got.content)
    assert listed.content == b""


async def test_head_at_the_token_endpoint_is_not_allowed(settings: Settings) -> None:
    async with running(settings) as (http, _):
        head = await http.head("/oauth2/token")
    assert head.status_code == 405
    assert head.headers["allow"] == "POST"
    assert head.content == b""


async def test_a_method_not_allowed_on_a_get_route_lists_head_beside_get(
    settings: Settings,
) -> None:
    async with running(settings) as (http, _):
        refused = await http.post("/healthz")
    assert refused.status_code == 405
    assert refused.headers["allow"] == "GET, HEAD, OPTIONS"


async def test_options_on_a_get_route_lists_head(settings: Settings) -> None:
    async with running(settings) as (http, _):
        options = await http.options("/healthz")
    assert options.status_code == 204
    assert options.headers["allow"] == "GET, HEAD, OPTIONS"


async def test_head_is_measured_under_its_own_method_and_the_route(settings: Settings) -> None:
    series = 'keyledger_http_responses_total{code="200",method="HEAD",route="/healthz"}'

    def counted(scraped: str) -> float:
        lines = [line for line in scraped.splitlines() if line.startswith(series + " ")]
        return float(lines[0].rsplit(" ", 1)[1]) if lines else 0.0

    async with running(settings) as (http, _):
        before = counted((await http.get("/metrics")).text)
        await http.head("/healthz")
        after = counted((await http.get("/metrics")).text)
    assert after == before + 1
