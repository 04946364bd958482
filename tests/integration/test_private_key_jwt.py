"""private_key_jwt at the token endpoint (RFC 7523 §2.2, §3), on SQLite and PostgreSQL."""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest
from litestar.testing import AsyncTestClient

from adapters.assertion_ids import UsedAssertionIds
from api.bootstrap import Runtime, open_ledger
from api.settings import Settings
from domain.admin_scopes import Admin
from domain.client import PRIVATE_KEY_JWT
from domain.client_settings import ClientSettings
from tests.assertions import (
    ISSUER,
    TOKEN_ENDPOINT,
    ClientKey,
    assertion,
    assertion_claims,
    assertion_form,
    client_key,
    jwks_of,
    sign,
)
from tests.integration.helpers import basic, register, running, stored_token, wait_for_client


async def keyed_client(runtime: Runtime, *keys: ClientKey, **settings: Any) -> str:
    settings.setdefault("name", "signer")
    settings.setdefault("allowed_scopes", ["invoices:read"])
    client_id = runtime.admin.register(
        ClientSettings.create(**settings),
        by=Admin.installation("test"),
        auth_method=PRIVATE_KEY_JWT,
        jwks=jwks_of(*keys),
    ).client_id
    await wait_for_client(runtime, client_id)
    return client_id


async def token(http: AsyncTestClient[Any], client_assertion: str, **form: str) -> Any:
    return await http.post("/oauth2/token", data=assertion_form(client_assertion, **form))


@pytest.mark.parametrize("alg", ["RS256", "PS256", "ES256", "EdDSA"])
async def test_a_signed_assertion_gets_a_token_recorded_with_its_method(
    settings: Settings, alg: str
) -> None:
    async with running(settings) as (http, runtime):
        key = client_key(alg)
        client_id = await keyed_client(runtime, key)
        response = await token(http, assertion(key, client_id))
        assert response.status_code == 200, response.text
        claims = jwt.decode(response.json()["access_token"], options={"verify_signature": False})
        assert claims["sub"] == claims["client_id"] == client_id
        issued = stored_token(runtime, claims["jti"])
        assert issued.auth_method == "private_key_jwt"
        assert issued.secret_generation == 0


@pytest.mark.parametrize("audience", [ISSUER, TOKEN_ENDPOINT])
async def test_the_audience_may_be_the_issuer_or_the_token_endpoint(
    settings: Settings, audience: str
) -> None:
    async with running(settings) as (http, runtime):
        key = client_key()
        client_id = await keyed_client(runtime, key)
        response = await token(http, assertion(key, client_id, audience=audience))
        assert response.status_code == 200, response.text


async def test_an_assertion_is_accepted_once(settings: Settings) -> None:
    async with running(settings) as (http, runtime):
        key = client_key()
        client_id = await keyed_client(runtime, key)
        once = assertion(key, client_id)
        assert (await token(http, once)).status_code == 200
        replayed = await token(http, once)
        assert replayed.status_code == 401
        assert replayed.json()["error"] == "invalid_client"


async def test_an_assertion_used_on_one_replica_is_refused_on_another(
    postgres_url: str, settings: Settings
) -> None:
    shared = replace(settings, database_url=postgres_url)
    async with running(shared) as (one, first), running(shared) as (other, second):
        key = client_key()
        client_id = await keyed_client(first, key)
        await wait_for_client(second, client_id)
        once = assertion(key, client_id)
        assert (await token(one, once)).status_code == 200
        assert (await token(other, once)).status_code == 401


async def test_an_hour_long_assertion_like_authlibs_default_is_accepted_and_longer_refused(
    settings: Settings,
) -> None:
    async with running(settings) as (http, runtime):
        key = client_key()
        client_id = await keyed_client(runtime, key)
        assert (await token(http, assertion(key, client_id, lifetime=3600))).status_code == 200
        too_long = await token(http, assertion(key, client_id, lifetime=2 * 3600))
        assert too_long.status_code == 401


async def test_an_expired_or_future_assertion_is_refused(settings: Settings) -> None:
    async with running(settings) as (http, runtime):
        key = client_key()
        client_id = await keyed_client(runtime, key)
        expired = assertion(key, client_id, now=time.time() - 600)
        future = assertion(key, client_id, now=time.time() + 600)
        assert (await token(http, expired)).status_code == 401
        assert (await token(http, future)).status_code == 401


async def test_the_kid_selects_the_key_and_is_needed_among_several(settings: Settings) -> None:
    async with running(settings) as (http, runtime):
        first, second = client_key("ES256"), client_key("EdDSA")
        client_id = await keyed_client(runtime, first, second)
        assert (await token(http, assertion(second, client_id))).status_code == 200
        unnamed = sign(second, assertion_claims(client_id), headers={})
        assert (await token(http, unnamed)).status_code == 401
        wrong_kid = sign(second, assertion_claims(client_id), headers={"kid": first.kid})
        assert (await token(http, wrong_kid)).status_code == 401


async def test_one_key_needs_no_kid(settings: Settings) -> None:
    async with running(settings) as (http, runtime):
        key = client_key()
        client_id = await keyed_client(runtime, key)
        unnamed = sign(key, assertion_claims(client_id), headers={})
        assert (await token(http, unnamed)).status_code == 200


async def test_a_client_uses_exactly_the_method_it_registered(settings: Settings) -> None:
    async with running(settings) as (http, runtime):
        key = client_key()
        keyed = await keyed_client(runtime, key)
        secret_client = await register(runtime)
        # A secret client's assertion (signed with a key it never registered) ...
        wrong_way = await token(http, assertion(key, secret_client.client_id))
        assert wrong_way.status_code == 401
        # ... and a secret presented for a private_key_jwt client both fail.
        by_secret = await http.post(
            "/oauth2/token",
            content="grant_type=client_credentials",
            headers=basic(keyed, secret_client.client_secret),
        )
        assert by_secret.status_code == 401
        assert by_secret.json()["error"] == "invalid_client"


async def test_an_assertion_and_a_secret_together_are_an_invalid_request(
    settings: Settings,
) -> None:
    async with running(settings) as (http, runtime):
        key = client_key()
        client_id = await keyed_client(runtime, key)
        response = await http.post(
            "/oauth2/token",
            data=assertion_form(assertion(key, client_id), client_secret="kl_secret_x"),
        )
        assert response.status_code == 400
        assert response.json()["error"] == "invalid_request"


async def test_the_assertion_type_is_required_and_must_be_jwt_bearer(settings: Settings) -> None:
    async with running(settings) as (http, runtime):
        key = client_key()
        client_id = await keyed_client(runtime, key)
        form = assertion_form(assertion(key, client_id))
        del form["client_assertion_type"]
        missing = await http.post("/oauth2/token", data=form)
        assert (missing.status_code, missing.json()["error"]) == (400, "invalid_request")
        form["client_assertion_type"] = "urn:ietf:params:oauth:client-assertion-type:saml2-bearer"
        other = await http.post("/oauth2/token", data=form)
        assert (other.status_code, other.json()["error"]) == (401, "invalid_client")


async def test_a_client_id_parameter_must_name_the_signer(settings: Settings) -> None:
    async with running(settings) as (http, runtime):
        key = client_key()
        client_id = await keyed_client(runtime, key)
        other = await register(runtime)
        named = await token(http, assertion(key, client_id), client_id=client_id)
        assert named.status_code == 200
        mismatched = await token(http, assertion(key, client_id), client_id=other.client_id)
        assert mismatched.status_code == 401


async def test_scope_rules_still_apply_after_the_assertion(settings: Settings) -> None:
    async with running(settings) as (http, runtime):
        key = client_key()
        client_id = await keyed_client(runtime, key)
        response = await token(http, assertion(key, client_id), scope="invoices:write")
        assert response.status_code == 400
        assert response.json()["error"] == "invalid_scope"


async def test_a_suspended_private_key_jwt_client_is_refused(settings: Settings) -> None:
    async with running(settings) as (http, runtime):
        key = client_key()
        client_id = await keyed_client(runtime, key)
        runtime.admin.suspend(client_id, by=Admin.installation("t"), reason="x")
        runtime.follower.catch_up()
        assert (await token(http, assertion(key, client_id))).status_code == 401


async def test_replaced_keys_take_over_from_the_old_ones(settings: Settings) -> None:
    async with running(settings) as (http, runtime):
        old, new = client_key("ES256"), client_key("RS256")
        client_id = await keyed_client(runtime, old)
        runtime.admin.replace_keys(
            client_id, jwks_of(new), by=Admin.installation("test"), reason="yearly"
        )
        runtime.follower.catch_up()
        assert (await token(http, assertion(old, client_id))).status_code == 401
        assert (await token(http, assertion(new, client_id))).status_code == 200


def test_used_assertion_ids_are_kept_per_client_until_their_assertions_expire(
    settings: Settings,
) -> None:
    ledger = open_ledger(settings, create=True)
    moment = [0.0]
    try:
        used = UsedAssertionIds(
            ledger.datastore, keep_after_expiry=60, prune_every=10, monotonic=lambda: moment[0]
        )
        now = datetime.now(UTC)
        expires = now + timedelta(seconds=30)
        assert used.use("client-a", "jti-1", expires, now)
        assert not used.use("client-a", "jti-1", expires, now)
        assert used.use("client-b", "jti-1", expires, now)  # another client's jti
        moment[0] = 11.0  # the next use prunes what expired over a leeway ago
        later = now + timedelta(seconds=200)
        assert used.use("client-a", "jti-2", later + timedelta(seconds=30), later)
        assert used.count() == 1
    finally:
        ledger.close()


async def test_introspection_and_revocation_take_assertions_addressed_to_them(
    settings: Settings,
) -> None:
    async with running(settings) as (http, runtime):
        key = client_key("EdDSA")
        client_id = await keyed_client(
            runtime, key, allowed_scopes=["a", "keyledger:introspect"], default_scopes=["a"]
        )
        access_token = (await token_for(http, key, client_id))["access_token"]
        introspect, revoke = f"{ISSUER}/oauth2/introspect", f"{ISSUER}/oauth2/revoke"

        async def call(path: str, audience: str) -> Any:
            form = assertion_form(assertion(key, client_id, audience=audience), token=access_token)
            del form["grant_type"]
            return await http.post(path, data=form)

        seen = await call("/oauth2/introspect", introspect)
        assert seen.json()["active"] is True, seen.text
        misaddressed = await call("/oauth2/introspect", revoke)
        assert misaddressed.status_code == 401
        assert (await call("/oauth2/revoke", revoke)).status_code == 200
        assert (await call("/oauth2/introspect", ISSUER)).json() == {"active": False}


async def test_an_assertion_used_at_the_token_endpoint_is_refused_everywhere_else(
    settings: Settings,
) -> None:
    async with running(settings) as (http, runtime):
        key = client_key()
        client_id = await keyed_client(
            runtime, key, allowed_scopes=["a", "keyledger:introspect"], default_scopes=["a"]
        )
        once = assertion(key, client_id, audience=ISSUER)
        access_token = (await token(http, once)).json()["access_token"]
        form = assertion_form(once, token=access_token)
        del form["grant_type"]
        assert (await http.post("/oauth2/introspect", data=form)).status_code == 401
        assert (await http.post("/oauth2/revoke", data=form)).status_code == 401


async def token_for(http: AsyncTestClient[Any], key: ClientKey, client_id: str) -> Any:
    response = await token(http, assertion(key, client_id))
    assert response.status_code == 200, response.text
    return response.json()
