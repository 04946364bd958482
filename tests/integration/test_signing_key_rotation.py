"""Signing keys as events: a whole rotation under a controlled clock, replicas, upgrades."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
from jwt.algorithms import ECAlgorithm
from litestar.testing import AsyncTestClient

from adapters.clock import FixedClock
from adapters.signing import KeyRing, RingEntry, SigningKey, load_or_create_key
from api.bootstrap import key_admin, open_ledger
from api.settings import Settings
from domain.admin_scopes import KEYS, Admin
from tests.integration.helpers import basic, register, running

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
ISSUER = "https://auth.example.test"
OPERATOR = Admin("ops", frozenset({KEYS}))


async def issue(http: AsyncTestClient[Any], client_id: str, secret: str) -> str:
    response = await http.post(
        "/oauth2/token", content="grant_type=client_credentials", headers=basic(client_id, secret)
    )
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


def verifies(token: str, jwks: dict[str, Any], at: datetime) -> bool:
    """What a resource server does with the JWKS it fetched at `at`."""
    kid = jwt.get_unverified_header(token)["kid"]
    found = [k for k in jwks["keys"] if k["kid"] == kid]
    if not found:
        return False
    jwt.decode(
        token,
        jwt.PyJWK(found[0]).key,
        algorithms=[found[0]["alg"]],
        audience=ISSUER,
        issuer=ISSUER,
        options={"verify_exp": False, "verify_iat": False},
    )
    claims = jwt.decode(token, options={"verify_signature": False})
    return bool(claims["exp"] > at.timestamp())


async def test_a_whole_rotation_verifies_every_token_against_the_jwks_of_its_moment(
    settings: Settings,
) -> None:
    clock = FixedClock(T0)
    async with running(settings, clock) as (http, runtime):
        creds = await register(runtime, token_ttl=3600)
        first = runtime.keys.active_at(clock.now()).kid
        issued: list[tuple[str, str]] = []  # (token, kid that signed it)

        async def step(seconds: float) -> dict[str, Any]:
            clock.advance(seconds)
            token = await issue(http, creds.client_id, creds.client_secret)
            jwks = (await http.get("/oauth2/jwks")).json()
            assert verifies(token, jwks, clock.now())
            for earlier, _ in issued:  # every earlier token still valid still verifies
                claims = jwt.decode(earlier, options={"verify_signature": False})
                if claims["exp"] > clock.now().timestamp():
                    assert verifies(earlier, jwks, clock.now())
            issued.append((token, jwt.get_unverified_header(token)["kid"]))
            return jwks

        await step(1)
        rotated = key_admin(settings, runtime.ledger, clock).rotate(
            delay=timedelta(minutes=10), by=OPERATOR, reason="walk"
        )
        runtime.key_keeper.catch_up()  # type: ignore[union-attr]
        jwks = await step(60)  # published, not signing yet
        assert {k["kid"] for k in jwks["keys"]} == {first, rotated.kid}
        assert issued[-1][1] == first
        await step(8 * 60)  # still within the pre-publication delay
        assert issued[-1][1] == first
        jwks = await step(61)  # past the activation: the new key signs, the old one is published
        assert issued[-1][1] == rotated.kid
        assert {k["kid"] for k in jwks["keys"]} == {first, rotated.kid}
        jwks = await step(23 * 3600)  # the old key's last token has expired long since
        assert {k["kid"] for k in jwks["keys"]} == {first, rotated.kid}
        jwks = await step(3600)  # 24 h after it retired: it leaves the JWKS
        assert {k["kid"] for k in jwks["keys"]} == {rotated.kid}
        assert issued[-1][1] == rotated.kid
    assert [kid for _, kid in issued].count(first) == 3


async def test_the_signing_key_rotates_itself_once_on_schedule_however_many_replicas_try(
    postgres_url: str, settings: Settings
) -> None:
    clock = FixedClock(T0)
    shared = replace(settings, database_url=postgres_url, key_rotation_days=90)
    async with running(shared, clock) as (_, one), running(shared, clock) as (_, other):
        keepers = [one.key_keeper, other.key_keeper]
        assert all(k is not None for k in keepers)
        clock.advance(timedelta(days=90).total_seconds() - 600 - 1)
        for keeper in keepers:
            keeper.check_rotation()  # type: ignore[union-attr]
        assert len(one.ledger.get_signing_keys().keys) == 1  # type: ignore[union-attr]
        clock.advance(1)
        await asyncio.gather(
            *(asyncio.to_thread(k.check_rotation) for k in keepers)  # type: ignore[union-attr]
        )
        keys = one.ledger.get_signing_keys()
        assert keys is not None
        assert len(keys.keys) == 2
        assert keys.keys[1].activates_at == clock.now() + timedelta(seconds=600)


async def test_every_replica_signs_with_a_new_key_within_a_second_of_its_activation(
    postgres_url: str, settings: Settings
) -> None:
    shared = replace(settings, database_url=postgres_url)
    async with running(shared) as (one, first), running(shared) as (other, _):
        creds = await register(first)
        await asyncio.sleep(0.2)
        rotated = key_admin(shared, first.ledger, first.clock).rotate(
            delay=timedelta(0), by=OPERATOR, reason="now"
        )
        async with asyncio.timeout(1.0):
            while True:
                kids = {
                    jwt.get_unverified_header(
                        await issue(http, creds.client_id, creds.client_secret)
                    )["kid"]
                    for http in (one, other)
                }
                if kids == {rotated.kid}:
                    break
                await asyncio.sleep(0.02)


def test_key_files_of_an_earlier_version_are_imported_on_the_first_start(
    settings: Settings,
) -> None:
    old = load_or_create_key(settings.keys_dir, "ES256")  # what the previous version made
    other = load_or_create_key(settings.keys_dir, "RS256")
    before = KeyRing([RingEntry(T0, key=old)])
    token = before.active_at(T0).sign({"iss": ISSUER, "sub": "c", "aud": ISSUER, "exp": 1})
    ledger = open_ledger(settings, create=True)
    try:
        keys = key_admin(settings, ledger, FixedClock(T0)).ensure(settings.keys_dir)
        again = key_admin(settings, ledger, FixedClock(T0)).ensure(settings.keys_dir)
    finally:
        ledger.close()
    assert keys.active_at(T0).kid == old.kid  # type: ignore[union-attr]
    assert {k.kid for k in keys.keys} == {old.kid, other.kid}
    assert again.version == keys.version  # imported once
    assert jwt.get_unverified_header(token)["kid"] == old.kid


def test_no_private_key_is_stored_in_the_clear(settings: Settings) -> None:
    ledger = open_ledger(settings, create=True)
    try:
        admin = key_admin(settings, ledger, FixedClock(T0))
        admin.ensure(settings.keys_dir)
        admin.rotate(delay=timedelta(0), by=OPERATOR)
        keys = ledger.get_signing_keys()
        assert keys is not None
        opened = admin.entries(keys)
        stored = [n.state for n in ledger.read(0, 100)]
    finally:
        ledger.close()
    assert len(opened) == 2
    for key in (e.key for e in opened):
        assert isinstance(key, SigningKey)
        private = json.loads(ECAlgorithm.to_jwk(key.private_key))["d"]
        assert all(private.encode() not in state for state in stored)
        assert all(b"PRIVATE KEY" not in state for state in stored)
    assert not list(settings.keys_dir.glob("signing-*.pem"))  # no key files made any more
