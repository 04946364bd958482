"""The token endpoint, reached before Litestar's router (`TokenRouteFirst`), answers exactly
as the routed endpoint does: errors through the app's exception handlers, every other
spelling of the path through the router."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from api.settings import Settings
from tests.integration.helpers import FORM, basic, register, running

GRANT = "grant_type=client_credentials&scope=invoices:read"


async def test_an_unexpected_failure_is_answered_as_a_json_500_and_logged(
    settings: Settings, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with running(settings) as (http, runtime):
        created = await register(runtime)

        async def broken(*args: Any, **kwargs: Any) -> Any:
            raise RuntimeError("a bug in the issuer")

        monkeypatch.setattr(runtime.issuer, "issue", broken)
        with caplog.at_level(logging.ERROR, logger="keyledger.errors"):
            response = await http.post(
                "/oauth2/token",
                content=GRANT,
                headers={**basic(created.client_id, created.client_secret), **FORM},
            )
    assert response.status_code == 500
    assert response.json() == {"error": "server_error", "error_description": "internal error"}
    assert response.headers["cache-control"] == "no-store"
    assert "unexpected error on /oauth2/token" in caplog.text


async def test_the_path_with_a_trailing_slash_is_still_the_token_endpoint(
    settings: Settings,
) -> None:
    async with running(settings) as (http, runtime):
        created = await register(runtime)
        response = await http.post(
            "/oauth2/token/",
            content=GRANT,
            headers={**basic(created.client_id, created.client_secret), **FORM},
        )
    assert response.status_code == 200
    assert response.json()["token_type"] == "Bearer"


async def test_a_request_id_is_still_returned_from_the_token_endpoint(
    settings: Settings,
) -> None:
    async with running(settings) as (http, runtime):
        created = await register(runtime)
        response = await http.post(
            "/oauth2/token",
            content=GRANT,
            headers={
                **basic(created.client_id, created.client_secret),
                **FORM,
                "X-Request-Id": "trace-me-42",
            },
        )
    assert response.status_code == 200
    assert response.headers["x-request-id"] == "trace-me-42"
