"""One client-authentication step for token, introspection and revocation (issue 14, finding 5).

The three OAuth endpoints spend from one per-address and per-client failure budget: wrong
secrets at introspection are throttled like wrong secrets at the token endpoint, and count
against the same budget, while the right credentials from a usual network still work.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from api.settings import Settings
from api.usecases.client_admin import NewCredentials
from tests.integration.helpers import basic, register, running

BURST = 5
ENDPOINTS = ["/oauth2/token", "/oauth2/introspect", "/oauth2/revoke"]
BODY = {
    "/oauth2/token": "grant_type=client_credentials",
    "/oauth2/introspect": "token=x",
    "/oauth2/revoke": "token=x",
}


@pytest.fixture
async def server(settings: Settings) -> AsyncIterator[tuple[AsyncTestClient[Any], Any]]:
    async with running(replace(settings, abuse_failure_burst=BURST)) as (http, runtime):
        yield http, runtime


async def wrong(http: AsyncTestClient[Any], endpoint: str, client: NewCredentials) -> Any:
    return await http.post(
        endpoint, content=BODY[endpoint], headers=basic(client.client_id, "kl_secret_wrong")
    )


@pytest.mark.parametrize("endpoint", ["/oauth2/introspect", "/oauth2/revoke"])
async def test_wrong_secrets_at_introspection_and_revocation_are_throttled(
    server: tuple[AsyncTestClient[Any], Any], endpoint: str
) -> None:
    http, runtime = server
    victim = await register(runtime, allowed_scopes=["keyledger:introspect"])
    answers = [(await wrong(http, endpoint, victim)).status_code for _ in range(BURST + 3)]
    assert answers == [401] * BURST + [429] * 3
    throttled = await wrong(http, endpoint, victim)
    assert throttled.json()["error"] == "too_many_requests"
    assert int(throttled.headers["retry-after"]) >= 1


@pytest.mark.parametrize("first", ENDPOINTS)
@pytest.mark.parametrize("then", ENDPOINTS)
async def test_failures_at_one_endpoint_spend_the_budget_of_every_other(
    server: tuple[AsyncTestClient[Any], Any], first: str, then: str
) -> None:
    http, runtime = server
    victim = await register(runtime, allowed_scopes=["keyledger:introspect"])
    for _ in range(BURST):
        assert (await wrong(http, first, victim)).status_code == 401
    assert (await wrong(http, then, victim)).status_code == 429


async def test_malformed_credentials_at_introspection_spend_the_address_budget(
    server: tuple[AsyncTestClient[Any], Any],
) -> None:
    http, runtime = server
    victim = await register(runtime, allowed_scopes=["keyledger:introspect"])
    garbage = {"Authorization": "Basic !!!", "Content-Type": "application/x-www-form-urlencoded"}
    for _ in range(BURST):
        response = await http.post("/oauth2/introspect", content="token=x", headers=garbage)
        assert response.status_code == 401
    assert (await wrong(http, "/oauth2/token", victim)).status_code == 429


async def test_the_right_secret_from_a_usual_network_still_introspects_while_throttled(
    server: tuple[AsyncTestClient[Any], Any],
) -> None:
    http, runtime = server
    rs = await register(runtime, allowed_scopes=["keyledger:introspect"])
    good = basic(rs.client_id, rs.client_secret)
    assert (await http.post("/oauth2/introspect", content="token=x", headers=good)).json() == {
        "active": False
    }
    for _ in range(BURST + 2):
        await wrong(http, "/oauth2/introspect", rs)
    answer = await http.post("/oauth2/introspect", content="token=x", headers=good)
    assert (answer.status_code, answer.json()) == (200, {"active": False})
