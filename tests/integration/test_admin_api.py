"""The admin HTTP API: bearer-protected, the same use cases as the CLI (issue 3)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest
from litestar.testing import AsyncTestClient

from adapters.clock import FixedClock
from api.bootstrap import Runtime
from api.settings import Settings
from api.usecases.client_admin import ADMIN_SCOPE, register_client
from domain import admin_scopes
from domain.client import PRIVATE_KEY_JWT
from domain.client_settings import ClientSettings
from tests.assertions import assertion, assertion_form, client_key, jwks_of
from tests.integration.helpers import basic, running

START = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
PRIVATE_JWK = {"kty": "EC", "crv": "P-256", "x": "eA", "y": "eA", "d": "eA"}


class Admin:
    """An HTTP client holding an admin access token."""

    def __init__(self, http: AsyncTestClient[Any], runtime: Runtime, clock: FixedClock) -> None:
        self.http, self.runtime, self.clock = http, runtime, clock
        self.token = ""

    async def login(self, scope: str = ADMIN_SCOPE) -> str:
        creds = register_client(
            self.runtime.ledger,
            self.runtime.hasher,
            self.clock,
            ClientSettings.create(
                name="ops", allowed_scopes=[ADMIN_SCOPE, "other"], default_scopes=[scope]
            ),
            actor="bootstrap",
        )
        await asyncio.to_thread(self.runtime.follower.catch_up)
        response = await self.http.post(
            "/oauth2/token",
            content="grant_type=client_credentials",
            headers=basic(creds.client_id, creds.client_secret),
        )
        self.token = response.json()["access_token"]
        return creds.client_id

    def headers(self, **extra: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}", **extra}

    async def call(self, method: str, path: str, **kwargs: Any) -> Any:
        headers = self.headers(**kwargs.pop("headers", {}))
        return await self.http.request(method, path, headers=headers, **kwargs)


@pytest.fixture
async def admin(settings: Settings) -> AsyncIterator[Admin]:
    clock = FixedClock(START)
    async with running(settings, clock) as (http, runtime):
        admin = Admin(http, runtime, clock)
        await admin.login()
        yield admin


async def new_client(admin: Admin, **body: Any) -> dict[str, Any]:
    response = await admin.call(
        "POST", "/admin/clients", json={"name": "billing", "allowed_scopes": ["a", "b"], **body}
    )
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def test_a_client_registered_over_the_api_gets_a_token_at_once(admin: Admin) -> None:
    created = await new_client(admin, default_scopes=["a"], token_ttl=600, reason="new service")
    assert created["client_secret"].startswith("kl_secret_")
    rotated = await admin.call("POST", f"/admin/clients/{created['client_id']}/secret/rotate")
    assert rotated.headers["cache-control"] == "no-store"  # it holds a secret
    response = await admin.http.post(
        "/oauth2/token",
        content="grant_type=client_credentials",
        headers=basic(created["client_id"], created["client_secret"]),
    )
    assert (response.json()["scope"], response.json()["expires_in"]) == ("a", 600)


async def test_the_whole_lifecycle_over_http(admin: Admin) -> None:
    c = await new_client(admin)
    path = f"/admin/clients/{c['client_id']}"
    patched = (
        await admin.call(
            "PATCH",
            path,
            json={
                "name": "billing-v2",
                "allowed_scopes": ["a"],
                "token_ttl": 900,
                "reason": "narrow",
            },
        )
    ).json()
    assert (patched["name"], patched["allowed_scopes"], patched["token_ttl"]) == (
        "billing-v2",
        ["a"],
        900,
    )
    rotated = (await admin.call("POST", f"{path}/secret/rotate", json={"grace": "1h"})).json()
    assert rotated["secret_generation"] == 2
    assert [s["generation"] for s in rotated["secrets"]] == [2, 1]
    revoked = (await admin.call("POST", f"{path}/secret/revoke-previous")).json()
    assert [s["generation"] for s in revoked["secrets"]] == [2]
    assert (await admin.call("POST", f"{path}/suspend", json={"reason": "leak"})).json()[
        "status"
    ] == "suspended"
    assert (await admin.call("POST", f"{path}/reactivate")).json()["status"] == "active"
    cut = (await admin.call("POST", f"{path}/tokens/revoke", json={"secret_generation": 1})).json()
    assert cut["secret_generation_cutoffs"] == {"1": START.isoformat()}
    assert (await admin.call("DELETE", f"{path}?reason=decommissioned")).json()[
        "status"
    ] == "deleted"
    history = (await admin.call("GET", f"{path}/history")).json()
    assert [h["event"] for h in history] == [
        "registered",
        "renamed",
        "scopes_changed",
        "token_lifetime_changed",
        "secret_rotated",
        "previous_secret_revoked",
        "suspended",
        "tokens_revoked",
        "reactivated",
        "tokens_revoked",
        "deleted",
    ]
    listed = (await admin.call("GET", "/admin/clients")).json()
    assert c["client_id"] in {x["client_id"] for x in listed}


async def test_the_actor_is_the_admin_client(admin: Admin) -> None:
    admin_id = await admin.login()
    c = await new_client(admin)
    await admin.call("POST", f"/admin/clients/{c['client_id']}/suspend", json={"reason": "x"})
    history = (await admin.call("GET", f"/admin/clients/{c['client_id']}/history")).json()
    assert history[-1]["actor"] == admin_id


async def test_a_client_can_be_read_as_it_was_at_a_past_moment(admin: Admin) -> None:
    c = await new_client(admin)
    admin.clock.advance(60)
    await admin.call("POST", f"/admin/clients/{c['client_id']}/suspend", json={"reason": "x"})
    at = (START + timedelta(seconds=30)).isoformat().replace("+00:00", "Z")
    then = await admin.call("GET", f"/admin/clients/{c['client_id']}", params={"at": at})
    assert then.json()["status"] == "active"


async def test_not_found_answers_say_what_was_not_found(admin: Admin) -> None:
    unknown = await admin.call("GET", "/admin/clients/00000000-0000-0000-0000-000000000000")
    assert unknown.json()["error_description"] == (
        "no client with id 00000000-0000-0000-0000-000000000000"
    )
    c = await new_client(admin)
    before = (START - timedelta(seconds=1)).isoformat()
    then = await admin.call("GET", f"/admin/clients/{c['client_id']}", params={"at": before})
    assert then.status_code == 404
    assert then.json()["error_description"].startswith(f"client {c['client_id']} did not exist at")


async def test_if_match_makes_a_stale_write_fail_its_precondition(admin: Admin) -> None:
    c = await new_client(admin)
    path = f"/admin/clients/{c['client_id']}"
    stale = await admin.call("PATCH", path, json={"token_ttl": 600}, headers={"If-Match": '"5"'})
    assert (stale.status_code, stale.json()["error"]) == (412, "precondition_failed")
    fresh = await admin.call("PATCH", path, json={"token_ttl": 600}, headers={"If-Match": '"1"'})
    assert fresh.status_code == 200


# Bad input: each answer is the documented error and writes nothing.

BAD = [
    ("GET", "/admin/clients/00000000-0000-0000-0000-000000000000", None, {}, 404, "not_found"),
    ("GET", "/admin/clients/not-a-uuid", None, {}, 404, "not_found"),
    (
        "POST",
        "/admin/clients",
        {"name": "x", "allowed_scopes": ['bad"scope']},
        {},
        422,
        "invalid_request",
    ),
    (
        "POST",
        "/admin/clients",
        {"name": "x", "allowed_scopes": ["a"], "token_ttl": 5},
        {},
        422,
        "invalid_request",
    ),
    (
        "POST",
        "/admin/clients",
        {"name": "x", "allowed_scopes": ["a"], "audiences": ["rel"]},
        {},
        422,
        "invalid_request",
    ),
    (
        "POST",
        "/admin/clients",
        {"name": "x", "allowed_scopes": "a", "extra": 1},
        {},
        400,
        "invalid_request",
    ),
    ("PATCH", "{c}", {"token_ttl": 100_000}, {}, 422, "invalid_request"),
    ("PATCH", "{c}", {"allowed_scopes": ["a b"]}, {}, 422, "invalid_request"),
    ("POST", "{c}/secret/rotate", {"grace": "31d"}, {}, 422, "invalid_request"),
    ("POST", "{c}/secret/rotate", {"grace": "soon"}, {}, 422, "invalid_request"),
    ("POST", "{c}/secret/revoke-previous", None, {}, 409, "conflict"),
    ("POST", "{c}/suspend", {"reason": ""}, {}, 422, "invalid_request"),
    ("POST", "{c}/reactivate", None, {}, 409, "conflict"),
    ("GET", "{c}", None, {"at": "2099-01-01T00:00Z"}, 422, "invalid_request"),
    ("GET", "{c}", None, {"at": "last tuesday"}, 422, "invalid_request"),
    ("GET", "{c}", None, {"at": "2026-11-20T10:00"}, 422, "invalid_request"),
    ("POST", "{c}/tokens/revoke", {"secret_generation": 9}, {}, 422, "invalid_request"),
]


@pytest.mark.parametrize(("method", "path", "body", "params", "status", "error"), BAD)
async def test_bad_admin_requests_get_a_clear_error_and_write_nothing(
    admin: Admin, method: str, path: str, body: Any, params: dict[str, str], status: int, error: str
) -> None:
    c = await new_client(admin)
    url = path.replace("{c}", f"/admin/clients/{c['client_id']}")
    head = admin.runtime.ledger.head()
    response = await admin.call(method, url, json=body, params=params)
    assert (response.status_code, response.json()["error"]) == (status, error), response.text
    assert admin.runtime.ledger.head() == head


async def test_commands_on_a_deleted_client_conflict(admin: Admin) -> None:
    c = await new_client(admin)
    path = f"/admin/clients/{c['client_id']}"
    await admin.call("DELETE", path)
    head = admin.runtime.ledger.head()
    for method, url, body in [
        ("POST", f"{path}/secret/rotate", {}),
        ("PATCH", path, {"token_ttl": 600}),
        ("POST", f"{path}/suspend", {"reason": "x"}),
        ("DELETE", path, None),
    ]:
        response = await admin.call(method, url, json=body)
        assert (response.status_code, response.json()["error"]) == (409, "conflict")
    assert admin.runtime.ledger.head() == head


async def test_no_token_is_401_with_a_bearer_challenge(admin: Admin) -> None:
    response = await admin.http.get("/admin/clients")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer realm="keyledger"'


@pytest.mark.parametrize(
    "authorization", ["Bearer garbage", "Basic abc", "Bearer ", "Bearer a.b.c"]
)
async def test_an_unusable_token_is_401_invalid_token(admin: Admin, authorization: str) -> None:
    response = await admin.http.get("/admin/clients", headers={"Authorization": authorization})
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["www-authenticate"]


async def test_a_token_without_the_admin_scope_is_403(admin: Admin) -> None:
    await admin.login(scope="other")
    response = await admin.call("GET", "/admin/clients")
    assert (response.status_code, response.json()["error"]) == (403, "insufficient_scope")
    assert 'scope="keyledger:admin:read"' in response.headers["www-authenticate"]


async def test_an_expired_admin_token_is_401(admin: Admin) -> None:
    admin.clock.advance(301)
    response = await admin.call("GET", "/admin/clients")
    assert (response.status_code, response.json()["error"]) == (401, "invalid_token")


async def test_a_suspended_admin_clients_tokens_stop_working(admin: Admin) -> None:
    admin_id = await admin.login()
    await admin.call("POST", f"/admin/clients/{admin_id}/suspend", json={"reason": "rotated staff"})
    response = await admin.call("GET", "/admin/clients")
    assert (response.status_code, response.json()["error"]) == (401, "invalid_token")


async def test_a_token_from_another_issuer_is_refused(admin: Admin, tmp_path: Any) -> None:
    from adapters.signing import JwtSigner, KeyRing

    forged = JwtSigner(KeyRing.load(tmp_path / "other", "ES256")).sign(
        {
            "iss": "https://auth.example.test",
            "aud": "https://auth.example.test",
            "sub": "x",
            "client_id": "x",
            "iat": int(START.timestamp()),
            "exp": int(START.timestamp()) + 300,
            "jti": "j",
            "scope": ADMIN_SCOPE,
        }
    )
    response = await admin.http.get("/admin/clients", headers={"Authorization": f"Bearer {forged}"})
    assert response.status_code == 401


async def test_a_private_key_jwt_client_is_registered_with_its_public_keys_and_no_secret(
    admin: Admin,
) -> None:
    key = client_key("ES256")
    response = await admin.call(
        "POST",
        "/admin/clients",
        json={
            "name": "payments",
            "allowed_scopes": ["pay"],
            "token_endpoint_auth_method": "private_key_jwt",
            "jwks": jwks_of(key),
        },
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert "client_secret" not in body
    assert body["token_endpoint_auth_method"] == "private_key_jwt"
    assert body["secrets"] == []
    assert [k["kid"] for k in body["jwks"]["keys"]] == [key.kid]
    signed = assertion(key, body["client_id"], now=START.timestamp())
    token = await admin.http.post("/oauth2/token", data=assertion_form(signed))
    assert token.status_code == 200, token.text


async def test_replacing_keys_records_one_event_and_the_new_key_signs(admin: Admin) -> None:
    old, new = client_key("ES256"), client_key("EdDSA")
    client_id = admin.runtime.admin.register(
        ClientSettings.create(name="payments", allowed_scopes=["pay"]),
        by=admin_scopes.Admin.installation("t"),
        auth_method=PRIVATE_KEY_JWT,
        jwks=jwks_of(old),
    ).client_id
    response = await admin.call(
        "PUT", f"/admin/clients/{client_id}/jwks", json={"jwks": jwks_of(new), "reason": "yearly"}
    )
    assert response.status_code == 200, response.text
    assert [k["kid"] for k in response.json()["jwks"]["keys"]] == [new.kid]
    history = (await admin.call("GET", f"/admin/clients/{client_id}/history")).json()
    assert [e["event"] for e in history] == ["registered", "keys_replaced"]
    assert history[1]["reason"] == "yearly"
    refused = assertion(old, client_id, now=START.timestamp())
    accepted = assertion(new, client_id, now=START.timestamp())
    assert (await admin.http.post("/oauth2/token", data=assertion_form(refused))).status_code == 401
    assert (
        await admin.http.post("/oauth2/token", data=assertion_form(accepted))
    ).status_code == 200


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"token_endpoint_auth_method": "private_key_jwt"}, "jwks goes with"),
        ({"jwks": {"keys": []}}, "jwks goes with"),
        ({"token_endpoint_auth_method": "client_secret_jwt"}, "token_endpoint_auth_method"),
        (
            {"token_endpoint_auth_method": "private_key_jwt", "jwks": {"keys": [PRIVATE_JWK]}},
            "private key material",
        ),
    ],
)
async def test_bad_key_registrations_are_422_and_record_nothing(
    admin: Admin, body: dict[str, Any], message: str
) -> None:
    before = admin.runtime.ledger.recorder.max_notification_id()
    response = await admin.call(
        "POST", "/admin/clients", json={"name": "x", "allowed_scopes": ["a"], **body}
    )
    assert response.status_code == 422, response.text
    assert message in response.text
    assert admin.runtime.ledger.recorder.max_notification_id() == before


async def test_a_secret_clients_keys_cannot_be_replaced(admin: Admin) -> None:
    created = admin.runtime.admin.register(
        ClientSettings.create(name="job", allowed_scopes=["a"]),
        by=admin_scopes.Admin.installation("t"),
    )
    response = await admin.call(
        "PUT", f"/admin/clients/{created.client_id}/jwks", json={"jwks": jwks_of(client_key())}
    )
    assert response.status_code == 409
    rotate = await admin.call("POST", f"/admin/clients/{created.client_id}/secret/rotate")
    assert rotate.status_code == 200


async def test_a_default_audience_pins_tokens_that_ask_for_no_resource(admin: Admin) -> None:
    created = await admin.call(
        "POST",
        "/admin/clients",
        json={
            "name": "orders",
            "allowed_scopes": ["a"],
            "audiences": ["https://stock.example", "https://billing.example"],
            "default_audience": "https://stock.example",
        },
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["default_audience"] == "https://stock.example"
    await asyncio.to_thread(admin.runtime.follower.catch_up)
    auth = basic(body["client_id"], body["client_secret"])
    plain = await admin.http.post(
        "/oauth2/token", content="grant_type=client_credentials", headers=auth
    )
    claims = jwt.decode(plain.json()["access_token"], options={"verify_signature": False})
    assert claims["aud"] == "https://stock.example"
    asked = await admin.http.post(
        "/oauth2/token",
        content="grant_type=client_credentials&resource=https://billing.example",
        headers=auth,
    )
    claims = jwt.decode(asked.json()["access_token"], options={"verify_signature": False})
    assert claims["aud"] == "https://billing.example"
    outside = await admin.call(
        "PATCH",
        f"/admin/clients/{body['client_id']}",
        json={"default_audience": "https://x.example"},
    )
    assert outside.status_code == 422
    assert "default audience" in outside.text


async def test_patching_allowed_scopes_to_none_takes_every_scope_away(admin: Admin) -> None:
    c = await new_client(admin, default_scopes=["a"])
    patched = await admin.call(
        "PATCH", f"/admin/clients/{c['client_id']}", json={"allowed_scopes": []}
    )
    assert patched.status_code == 200, patched.text
    assert (patched.json()["allowed_scopes"], patched.json()["default_scopes"]) == ([], [])
