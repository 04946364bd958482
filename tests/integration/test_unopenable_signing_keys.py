"""A signing key that cannot be opened never stops a server while the key that signs can be
(issue 15, part 4): it stays published by its public JWK, is noted once, and only the key
whose turn it is to sign must open, else the server refuses to start, naming it."""

from __future__ import annotations

import asyncio
import base64
import logging
import os
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest

from adapters.clock import FixedClock
from adapters.key_vault import KeyVault
from adapters.signing import ActiveKey, JwtVerifier, SigningKey, generate_key
from api import bootstrap
from api.bootstrap import build, installation_secrets, key_admin, open_ledger, prepare
from api.settings import Settings
from api.usecases.signing_keys import SigningKeyUnavailable
from domain.admin_scopes import Admin
from tests.integration.helpers import basic, register, running

ISSUER = "https://auth.example.test"
HOW = ["sealed with another key-encryption key", "sealed copy damaged"]


def record_lost_key(settings: Settings, how: str, delay: timedelta) -> SigningKey:
    """Record a key this installation cannot open, as a process with another key-encryption
    key could before installations were fingerprinted, or as a damaged store would hold it."""
    ledger = open_ledger(settings)
    try:
        keys = ledger.get_signing_keys()
        assert keys is not None
        key = generate_key("ES256")
        if how == HOW[0]:
            sealed = KeyVault(os.urandom(32)).seal(key.kid, key.private_key)
        else:
            own = KeyVault(installation_secrets(settings, ledger).kek).seal(
                key.kid, key.private_key
            )
            raw = bytearray(base64.urlsafe_b64decode(own))
            raw[-1] ^= 1  # one bit of the authentication tag
            sealed = base64.urlsafe_b64encode(bytes(raw)).decode()
        now = datetime.now(UTC)
        keys.add_key(
            kid=key.kid,
            alg=key.alg,
            public_jwk=key.public_jwk,
            sealed_private_key=sealed,
            activates_at=now + delay,
            now=now,
            actor="stray",
            reason=how,
        )
        ledger.save(keys)
    finally:
        ledger.close()
    return key


def rotate_now(settings: Settings) -> str:
    """A proper rotation by the installation: a key it can open signs from now."""
    ledger = open_ledger(settings)
    try:
        admin = key_admin(settings, ledger, FixedClock(datetime.now(UTC)))
        return admin.rotate(delay=timedelta(0), by=Admin.installation("test")).kid
    finally:
        ledger.close()


async def published(http: Any) -> set[str]:
    return {k["kid"] for k in (await http.get("/oauth2/jwks")).json()["keys"]}


def noted(caplog: pytest.LogCaptureFixture, kid: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if kid in r.getMessage() and r.levelno >= logging.WARNING]


async def token(http: Any, runtime: Any) -> str:
    creds = await register(runtime)
    response = await http.post(
        "/oauth2/token",
        content="grant_type=client_credentials",
        headers=basic(creds.client_id, creds.client_secret),
    )
    assert response.status_code == 200, response.text
    issued: str = response.json()["access_token"]
    return issued


@pytest.mark.parametrize("how", HOW)
async def test_a_server_starts_and_signs_when_a_retired_key_cannot_be_opened(
    settings: Settings, how: str, caplog: pytest.LogCaptureFixture
) -> None:
    prepare(settings, create=True)
    lost = record_lost_key(settings, how, timedelta(0))  # it signed for a while, then
    current = rotate_now(settings)  # the installation rotated to a key it can open
    async with running(settings) as (http, runtime):
        assert (await http.get("/readyz")).status_code == 200
        issued = await token(http, runtime)
        assert jwt.get_unverified_header(issued)["kid"] == current
        jwks = (await http.get("/oauth2/jwks")).json()
        [public] = [k for k in jwks["keys"] if k["kid"] == lost.kid]
        assert public == lost.public_jwk
        # A token the lost key signed before it was lost verifies, here and at any resource
        # server that reads the JWKS.
        claims = {"iss": ISSUER, "aud": ISSUER, "sub": "c", "client_id": "c", "jti": "j"}
        earlier = ActiveKey(lost).sign({**claims, "iat": 1, "exp": 2})
        assert JwtVerifier(runtime.keys, ISSUER).verify(earlier)["jti"] == "j"
        jwt.decode(
            earlier,
            jwt.PyJWK(public).key,
            algorithms=["ES256"],
            audience=ISSUER,
            options={"verify_exp": False},
        )
        await asyncio.sleep(0.3)  # many follow intervals
        assert runtime.failing == {}
    [warning] = noted(caplog, lost.kid)
    assert warning.levelno == logging.WARNING
    assert "only its public JWK is used here" in warning.getMessage()


async def test_a_lost_key_arriving_while_serving_is_published_noted_once_and_fails_nothing(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    clock = FixedClock(datetime.now(UTC))
    async with running(settings, clock) as (http, _):
        lost = record_lost_key(settings, HOW[1], timedelta(minutes=10))  # another process
        async with asyncio.timeout(1):
            while lost.kid not in await published(http):  # noqa: ASYNC110
                await asyncio.sleep(0.02)
        await asyncio.sleep(0.3)  # many follow intervals
        readiness = await http.get("/readyz")
        assert (readiness.status_code, readiness.json()["failing"]) == (200, {})
        assert len(noted(caplog, lost.kid)) == 1
        # Its turn comes: only now is the server not ready, naming the key.
        clock.advance(timedelta(minutes=11).total_seconds())
        async with asyncio.timeout(2):
            while (readiness := await http.get("/readyz")).status_code == 200:  # noqa: ASYNC110
                await asyncio.sleep(0.02)
        assert readiness.status_code == 503
        assert lost.kid in readiness.json()["failing"]["signing key"]
        assert "signing-keys follower" not in readiness.json()["failing"]


@pytest.mark.parametrize("how", HOW)
def test_a_server_refuses_to_start_when_the_key_that_signs_now_cannot_be_opened(
    settings: Settings, how: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    prepare(settings, create=True)
    lost = record_lost_key(settings, how, timedelta(0))
    with pytest.raises(SigningKeyUnavailable) as refused:
        build(settings)
    message = str(refused.value)
    assert lost.kid in message
    assert "KEYLEDGER_KEY_ENCRYPTION_KEY" in message

    def run(settings: Settings) -> None:
        raise AssertionError("the server was started")

    monkeypatch.setattr(bootstrap.server, "run", run)
    with pytest.raises(SigningKeyUnavailable, match=lost.kid):
        bootstrap.serve(settings)  # before any worker starts: one message, no traceback
