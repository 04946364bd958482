"""Bad input at the token endpoint: the RFC error, never a 500, and no event written."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from api.settings import Settings
from api.usecases.client_admin import NewCredentials
from tests.integration.helpers import FORM, basic, register, running

INVALID_CLIENT_BODY = {
    "error": "invalid_client",
    "error_description": "client authentication failed",
}


def _cases(c: NewCredentials) -> dict[str, tuple[dict[str, str], bytes, int, str]]:
    """name -> (headers, body, expected status, expected error)."""
    auth = basic(c.client_id, c.client_secret)
    grant = b"grant_type=client_credentials"
    post = f"client_id={c.client_id}&client_secret={c.client_secret}".encode()
    return {
        "missing grant_type": (auth, b"scope=invoices:read", 400, "invalid_request"),
        "repeated grant_type": (auth, grant + b"&" + grant, 400, "invalid_request"),
        "repeated scope": (auth, grant + b"&scope=a&scope=b", 400, "invalid_request"),
        "password grant": (
            auth,
            b"grant_type=password&username=a&password=b",
            400,
            "unsupported_grant_type",
        ),
        "authorization_code grant": (
            auth,
            b"grant_type=authorization_code&code=x",
            400,
            "unsupported_grant_type",
        ),
        "basic and body secret": (auth, grant + b"&" + post, 400, "invalid_request"),
        "scope not allowed": (auth, grant + b"&scope=admin", 400, "invalid_scope"),
        "scope with bad syntax": (
            auth,
            grant + b"&scope=invoices:read%20%20x",
            400,
            "invalid_scope",
        ),
        "scope with a quote": (auth, grant + b'&scope=a"b', 400, "invalid_scope"),
        "resource not allowed": (
            auth,
            grant + b"&resource=https%3A%2F%2Fevil.example",
            400,
            "invalid_target",
        ),
        "relative resource": (auth, grant + b"&resource=%2Fapi", 400, "invalid_target"),
        "json body": (
            {**auth, "Content-Type": "application/json"},
            b'{"grant_type": "client_credentials"}',
            400,
            "invalid_request",
        ),
        "no content type": (
            {"Authorization": auth["Authorization"]},
            grant,
            400,
            "invalid_request",
        ),
        "multipart body": (
            {**auth, "Content-Type": "multipart/form-data; boundary=x"},
            b"--x--",
            400,
            "invalid_request",
        ),
        "invalid utf-8": (auth, grant + b"&scope=\xff\xfe", 400, "invalid_request"),
        "percent-encoded invalid utf-8": (auth, grant + b"&scope=%ff", 400, "invalid_request"),
        "huge body": (auth, grant + b"&scope=" + b"a" * 17_000, 413, "invalid_request"),
    }


CASE_NAMES = list(_cases(NewCredentials("x", "y")))


@pytest.mark.parametrize("case", CASE_NAMES)
async def test_bad_requests_get_the_rfc_error_and_write_nothing(
    settings: Settings, case: str
) -> None:
    async with running(settings) as (http, runtime):
        creds = await register(runtime)
        headers, body, status, error = _cases(creds)[case]
        head = runtime.ledger.head()
        response = await http.post("/oauth2/token", content=body, headers=headers)
        assert (response.status_code, response.json()["error"]) == (status, error), response.text
        assert runtime.ledger.head() == head
        assert response.headers["cache-control"] == "no-store"


def _auth_failures(c: NewCredentials) -> dict[str, dict[str, Any]]:
    def raw(value: str) -> dict[str, str]:
        return {"Authorization": value, **FORM}

    return {
        "unknown client": basic("no-such-client", c.client_secret),
        "wrong secret": basic(c.client_id, "kl_secret_wrong"),
        "empty secret": raw("Basic " + base64.b64encode(f"{c.client_id}:".encode()).decode()),
        "malformed basic header": raw("Basic"),
        "bad base64": raw("Basic %%%notbase64"),
        "not basic": raw("Bearer abc"),
        "no colon": raw("Basic " + base64.b64encode(b"justanid").decode()),
        "no credentials": FORM,
        "post with wrong secret": {**FORM, "X-Body": f"client_id={c.client_id}&client_secret=nope"},
    }


AUTH_NAMES = list(_auth_failures(NewCredentials("x", "y")))


@pytest.mark.parametrize("case", AUTH_NAMES)
async def test_every_client_authentication_failure_looks_the_same(
    settings: Settings, case: str
) -> None:
    async with running(settings) as (http, runtime):
        creds = await register(runtime)
        headers = dict(_auth_failures(creds)[case])
        extra = headers.pop("X-Body", "")
        body = "grant_type=client_credentials" + (f"&{extra}" if extra else "")
        head = runtime.ledger.head()
        response = await http.post("/oauth2/token", content=body, headers=headers)
        assert response.status_code == 401
        assert response.json() == INVALID_CLIENT_BODY
        assert response.headers["www-authenticate"].startswith("Basic")
        assert runtime.ledger.head() == head


async def test_get_on_the_token_endpoint_is_not_allowed(settings: Settings) -> None:
    async with running(settings) as (http, _):
        response = await http.get("/oauth2/token")
        assert response.status_code == 405
        assert response.json()["error"] == "method_not_allowed"
