"""DESIGN.md invariant 7 over generated input: the RFC error, never a 500, nothing written."""

from __future__ import annotations

import base64
import json
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from litestar.testing import TestClient

from adapters.clock import SystemClock
from api.bootstrap import Runtime, build
from api.http.app import create_app
from api.settings import Settings
from api.usecases.client_admin import ADMIN_SCOPE, NewCredentials, register_client
from domain.client_settings import ClientSettings

OAUTH_ERRORS = {
    "invalid_request",
    "invalid_client",
    "invalid_scope",
    "invalid_target",
    "unsupported_grant_type",
    "unauthorized_client",
    "method_not_allowed",
}


@pytest.fixture(scope="module")
def app() -> Iterator[tuple[TestClient[Any], Runtime, NewCredentials, NewCredentials]]:
    with tempfile.TemporaryDirectory() as tmp:
        runtime = build(
            Settings(
                database_url=f"sqlite:///{tmp}/k.db",
                keys_dir=Path(tmp) / "keys",
                issuer="https://auth.example",
                kafka_bootstrap="off",
                follow_interval=0.01,
                abuse_failure_burst=0,  # every failure here is deliberate: no throttling
            )
        )
        clock = SystemClock()
        client = register_client(
            runtime.ledger,
            runtime.hasher,
            clock,
            ClientSettings.create(name="c", allowed_scopes=["a", "b"]),
            actor="t",
        )
        rs = register_client(
            runtime.ledger,
            runtime.hasher,
            clock,
            ClientSettings.create(name="rs", allowed_scopes=["keyledger:introspect", ADMIN_SCOPE]),
            actor="t",
        )
        with TestClient(app=create_app(runtime=runtime)) as http:
            runtime.follower.catch_up()
            yield http, runtime, client, rs


form_values = st.text(max_size=30) | st.sampled_from(
    ["client_credentials", "a", "a b", "https://x"]
)
form_bodies = st.one_of(
    st.binary(max_size=300),
    st.lists(
        st.tuples(
            st.sampled_from(
                ["grant_type", "scope", "resource", "client_id", "client_secret", "token", "x"]
            ),
            form_values,
        ),
        max_size=6,
    ).map(lambda pairs: "&".join(f"{k}={v}" for k, v in pairs).encode("utf-8", "surrogatepass")),
)
content_types = st.sampled_from(
    [
        "application/x-www-form-urlencoded",
        "application/x-www-form-urlencoded; charset=utf-8",
        "application/json",
        "text/plain",
        "multipart/form-data; boundary=x",
        "",
    ]
)
authorizations = st.one_of(
    st.none(),
    st.text(max_size=40),
    st.binary(max_size=40).map(lambda b: "Basic " + base64.b64encode(b).decode()),
)


def _headers(content_type: str, authorization: str | None) -> dict[str, str]:
    headers = {"Content-Type": content_type} if content_type else {}
    if authorization is not None and authorization.isprintable() and authorization.isascii():
        headers["Authorization"] = authorization
    return headers


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    path=st.sampled_from(["/oauth2/token", "/oauth2/introspect", "/oauth2/revoke"]),
    body=form_bodies,
    content_type=content_types,
    authorization=authorizations,
)
def test_generated_requests_get_an_oauth_error_and_write_nothing(
    app: tuple[TestClient[Any], Runtime, NewCredentials, NewCredentials],
    path: str,
    body: bytes,
    content_type: str,
    authorization: str | None,
) -> None:
    http, runtime, _, _ = app
    head = runtime.ledger.head()
    response = http.post(path, content=body, headers=_headers(content_type, authorization))
    assert response.status_code < 500, response.text
    if response.status_code != 200:
        assert response.json()["error"] in OAUTH_ERRORS
        assert runtime.ledger.head() == head


def _unsigned(claims: dict[str, Any], alg: str = "none") -> str:
    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return f"{part({'alg': alg, 'typ': 'at+jwt'})}.{part(claims)}."


@settings(
    max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    alg=st.sampled_from(["none", "None", "NONE", "HS256", "ES256", ""]),
    scope=st.sampled_from([ADMIN_SCOPE, "a"]),
)
def test_unsigned_or_forged_tokens_are_never_active_nor_admins(
    app: tuple[TestClient[Any], Runtime, NewCredentials, NewCredentials], alg: str, scope: str
) -> None:
    http, _, client, rs = app
    now = int(SystemClock().now().timestamp())
    forged = _unsigned(
        {
            "iss": "https://auth.example",
            "aud": "https://auth.example",
            "sub": client.client_id,
            "client_id": client.client_id,
            "iat": now,
            "exp": now + 300,
            "jti": "j",
            "scope": scope,
        },
        alg,
    )
    introspected = http.post(
        "/oauth2/introspect", data={"token": forged}, auth=(rs.client_id, rs.client_secret)
    )
    assert introspected.json() == {"active": False}
    admin = http.get("/admin/clients", headers={"Authorization": f"Bearer {forged}"})
    assert admin.status_code == 401
