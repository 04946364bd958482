"""POST /oauth2/token against a real event store (SQLite and PostgreSQL)."""

from __future__ import annotations

import logging
from typing import Any

import jwt
import pytest
from httpx import Response
from litestar import Litestar
from litestar.config.cors import CORSConfig

from api.http.oauth2.token import TokenRouteFirst, token_endpoint
from api.settings import Settings
from api.usecases.client_admin import NewCredentials
from tests.integration.helpers import basic, register, running, stored_token

GRANT = "grant_type=client_credentials&scope=invoices:read"


async def _post(
    http: Any, creds: NewCredentials, path: str = "/oauth2/token", **extra: str
) -> Response:
    headers = {**basic(creds.client_id, creds.client_secret), **extra}
    response: Response = await http.post(path, content=GRANT, headers=headers)
    return response


async def test_a_registered_client_gets_a_token_that_verifies_against_the_jwks(
    settings: Settings,
) -> None:
    async with running(settings) as (http, runtime):
        creds = await register(runtime)
        response = await http.post(
            "/oauth2/token",
            content="grant_type=client_credentials&scope=invoices:read",
            headers=basic(creds.client_id, creds.client_secret),
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["token_type"] == "Bearer"
        assert body["expires_in"] == 300
        assert body["scope"] == "invoices:read"
        jwks = (await http.get("/oauth2/jwks")).json()
        header = jwt.get_unverified_header(body["access_token"])
        [jwk] = [k for k in jwks["keys"] if k["kid"] == header["kid"]]
        claims = jwt.decode(
            body["access_token"],
            jwt.PyJWK(jwk).key,
            algorithms=["ES256"],
            audience="https://auth.example.test",
            issuer="https://auth.example.test",
        )
        assert header["typ"] == "at+jwt"
        assert claims["sub"] == claims["client_id"] == creds.client_id
        assert claims["scope"] == "invoices:read"
        assert claims["exp"] - claims["iat"] == 300


async def test_the_token_response_is_never_cached(settings: Settings) -> None:
    async with running(settings) as (http, runtime):
        creds = await register(runtime)
        response = await http.post(
            "/oauth2/token",
            content="grant_type=client_credentials",
            headers=basic(creds.client_id, creds.client_secret),
        )
        assert response.headers["cache-control"] == "no-store"


async def test_client_secret_post_is_accepted(settings: Settings) -> None:
    async with running(settings) as (http, runtime):
        creds = await register(runtime)
        response = await http.post(
            "/oauth2/token",
            data={
                "grant_type": "client_credentials",
                "client_id": creds.client_id,
                "client_secret": creds.client_secret,
            },
        )
        assert response.status_code == 200, response.text


async def test_an_omitted_scope_grants_the_clients_default_scopes(settings: Settings) -> None:
    async with running(settings) as (http, runtime):
        creds = await register(runtime, default_scopes=["invoices:read"], token_ttl=900)
        response = await http.post(
            "/oauth2/token",
            content="grant_type=client_credentials",
            headers=basic(creds.client_id, creds.client_secret),
        )
        assert response.json()["scope"] == "invoices:read"
        assert response.json()["expires_in"] == 900


async def test_the_issued_event_is_committed_before_the_token_is_returned(
    settings: Settings,
) -> None:
    async with running(settings) as (http, runtime):
        creds = await register(runtime, audiences=["https://invoices.example"])
        response = await http.post(
            "/oauth2/token",
            content="grant_type=client_credentials&scope=invoices:write",
            headers=basic(creds.client_id, creds.client_secret),
        )
        claims = jwt.decode(response.json()["access_token"], options={"verify_signature": False})
        token = stored_token(runtime, claims["jti"])
        assert token.client_id == creds.client_id
        assert token.scopes == ["invoices:write"]
        assert token.audience == ["https://invoices.example"]
        assert int(token.issued_at.timestamp()) == claims["iat"]
        assert int(token.expires_at.timestamp()) == claims["exp"]
        assert token.kid == jwt.get_unverified_header(response.json()["access_token"])["kid"]
        assert token.secret_generation == 1
        assert token.client_version == 1
        assert token.auth_method == "client_secret_basic"


async def test_a_requested_resource_becomes_the_audience(settings: Settings) -> None:
    async with running(settings) as (http, runtime):
        creds = await register(runtime, audiences=["https://a.example", "https://b.example"])
        response = await http.post(
            "/oauth2/token",
            content="grant_type=client_credentials&resource=https%3A%2F%2Fb.example",
            headers=basic(creds.client_id, creds.client_secret),
        )
        claims = jwt.decode(response.json()["access_token"], options={"verify_signature": False})
        assert claims["aud"] == "https://b.example"


async def test_metadata_describes_what_is_served(settings: Settings) -> None:
    async with running(settings) as (http, _):
        meta = (await http.get("/.well-known/oauth-authorization-server")).json()
        assert meta["issuer"] == "https://auth.example.test"
        assert meta["token_endpoint"] == "https://auth.example.test/oauth2/token"
        assert meta["jwks_uri"] == "https://auth.example.test/oauth2/jwks"
        assert meta["grant_types_supported"] == ["client_credentials"]
        assert set(meta["token_endpoint_auth_methods_supported"]) == {
            "client_secret_basic",
            "client_secret_post",
            "private_key_jwt",
        }
        assert meta["token_endpoint_auth_signing_alg_values_supported"] == [
            "RS256",
            "PS256",
            "ES256",
            "EdDSA",
        ]
        for endpoint in ("token", "introspection", "revocation"):  # one way to authenticate
            assert meta[f"{endpoint}_endpoint_auth_methods_supported"] == [
                "client_secret_basic",
                "client_secret_post",
                "private_key_jwt",
            ]
            assert meta[f"{endpoint}_endpoint_auth_signing_alg_values_supported"] == [
                "RS256",
                "PS256",
                "ES256",
                "EdDSA",
            ]


async def test_health_readiness_and_openapi_are_served(settings: Settings) -> None:
    async with running(settings) as (http, _):
        assert (await http.get("/healthz")).json() == {"status": "ok"}
        assert (await http.get("/readyz")).status_code == 200
        schema = (await http.get("/schema/openapi.json")).json()
        token = schema["paths"]["/oauth2/token"]["post"]
        form = token["requestBody"]["content"]["application/x-www-form-urlencoded"]["schema"]
        assert form["properties"]["grant_type"]["enum"] == ["client_credentials"]
        assert {"200", "400", "401"} <= token["responses"].keys()
        assert "/oauth2/jwks" in schema["paths"]


async def test_the_path_with_a_trailing_slash_is_the_token_endpoint_too(
    settings: Settings,
) -> None:
    async with running(settings) as (http, runtime):
        creds = await register(runtime)
        response = await _post(http, creds, "/oauth2/token/")
    assert response.status_code == 200
    assert response.json()["token_type"] == "Bearer"


async def test_a_malformed_host_header_is_refused_before_any_token_is_issued(
    settings: Settings,
) -> None:
    async with running(settings) as (http, runtime):
        creds = await register(runtime)
        head = runtime.ledger.head()
        exact = await _post(http, creds, Host="a b")
        slashed = await _post(http, creds, "/oauth2/token/", Host="x/y?z")
        assert runtime.ledger.head() == head
    assert exact.status_code == slashed.status_code == 400
    assert (
        exact.json()
        == slashed.json()
        == {
            "error": "invalid_request",
            "error_description": "Invalid host header",
        }
    )


async def test_the_token_endpoint_returns_the_request_id_it_was_given(
    settings: Settings,
) -> None:
    async with running(settings) as (http, runtime):
        creds = await register(runtime)
        response = await _post(http, creds, **{"X-Request-Id": "trace-me-42"})
    assert response.status_code == 200
    assert response.headers["x-request-id"] == "trace-me-42"


async def test_an_unexpected_failure_is_answered_as_a_json_500_and_logged(
    settings: Settings, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with running(settings) as (http, runtime):
        creds = await register(runtime)

        async def broken(*args: Any, **kwargs: Any) -> Any:
            raise RuntimeError("a bug in the issuer")

        monkeypatch.setattr(runtime.issuer, "issue", broken)
        with caplog.at_level(logging.ERROR, logger="keyledger.errors"):
            response = await _post(http, creds)
    assert response.status_code == 500
    assert response.json() == {"error": "server_error", "error_description": "internal error"}
    assert response.headers["cache-control"] == "no-store"
    assert "unexpected error on /oauth2/token" in caplog.text


def test_the_token_endpoint_refuses_to_skip_what_the_app_would_apply_to_it() -> None:
    app = Litestar(route_handlers=[token_endpoint], cors_config=CORSConfig())
    with pytest.raises(RuntimeError, match="cors_config"):
        TokenRouteFirst(app.asgi_handler, app)
