"""RFC 7523 §3 as a property: every mutation of a valid client assertion (a claim, the header's
`alg` or `kid`, the signature, the times, the audience, a replayed `jti`) is `invalid_client`
and writes no event; the untouched assertion succeeds, once."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from litestar.testing import TestClient

from api.bootstrap import Runtime, build
from api.http.app import create_app
from api.settings import Settings
from domain.admin_scopes import Admin
from domain.client import PRIVATE_KEY_JWT
from domain.client_settings import ClientSettings
from tests.assertions import (
    ISSUER,
    TOKEN_ENDPOINT,
    ClientKey,
    assertion_claims,
    assertion_form,
    client_key,
    jwks_of,
    sign,
)

MAX_LIFETIME, LEEWAY = 3600, 60
Keyed = tuple[ClientKey, str]


@pytest.fixture(scope="module")
def app() -> Iterator[tuple[TestClient[Any], Runtime, list[Keyed]]]:
    with tempfile.TemporaryDirectory() as tmp:
        runtime = build(
            Settings(
                database_url=f"sqlite:///{tmp}/k.db",
                keys_dir=Path(tmp) / "keys",
                issuer=ISSUER,
                kafka_bootstrap="off",
                follow_interval=0.01,
                abuse_failure_burst=0,  # every failure here is deliberate: no throttling
            )
        )
        keyed = []
        for alg in ("ES256", "RS256", "EdDSA"):
            key = client_key(alg)
            settings_ = ClientSettings.create(name=f"signer-{alg}", allowed_scopes=["a"])
            registered = runtime.admin.register(
                settings_,
                by=Admin.installation("t"),
                auth_method=PRIVATE_KEY_JWT,
                jwks=jwks_of(key),
            )
            keyed.append((key, registered.client_id))
        with TestClient(app=create_app(runtime=runtime)) as http:
            runtime.follower.catch_up()
            yield http, runtime, keyed


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _segments(token: str) -> list[str]:
    return token.split(".")


def _unb64(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


Mutation = Callable[[ClientKey, dict[str, Any]], str]

now_ish = int(time.time())
required = st.sampled_from(["iss", "sub", "aud", "exp", "jti"])
not_the_client = st.text(min_size=1, max_size=40)
foreign_audience = st.text(max_size=40).filter(lambda a: a not in (ISSUER, TOKEN_ENDPOINT)) | (
    st.sampled_from(
        [
            f"{ISSUER}/",
            f"{TOKEN_ENDPOINT}/",
            "https://auth.example.test:443",
            TOKEN_ENDPOINT.upper(),
        ]
    )
)
# Past the limit by at least half a minute: the clock moves on between signing and checking,
# and an `iat` or `nbf` one second beyond the leeway is inside it a second later.
seconds = st.integers(min_value=30, max_value=10**7)


def _claims_changed(change: Callable[[dict[str, Any]], None]) -> Mutation:
    def mutate(key: ClientKey, claims: dict[str, Any]) -> str:
        changed = dict(claims)
        change(changed)
        return sign(key, changed)

    return mutate


def _deleted(name: str) -> Mutation:
    return _claims_changed(lambda c: c.pop(name))


def _set(name: str, value: Any) -> Mutation:
    return _claims_changed(lambda c: c.__setitem__(name, value))


def _shifted(name: str, base: str, by: int) -> Mutation:
    return _claims_changed(lambda c: c.__setitem__(name, c[base] + by))


def _header(header: dict[str, Any]) -> Mutation:
    """The same claims and signature under another protected header."""

    def mutate(key: ClientKey, claims: dict[str, Any]) -> str:
        _, payload, signature = _segments(sign(key, claims))
        return ".".join([_b64(json.dumps(header).encode()), payload, signature])

    return mutate


def _alg_none(key: ClientKey, claims: dict[str, Any]) -> str:
    _, payload, _ = _segments(sign(key, claims))
    header = _b64(json.dumps({"alg": "none", "kid": key.kid}).encode())
    return f"{header}.{payload}."


def _hmac_with_the_public_key(key: ClientKey, claims: dict[str, Any]) -> str:
    """The classic algorithm confusion: HS256 keyed with the public JWK's bytes."""
    header = _b64(json.dumps({"alg": "HS256", "kid": key.kid, "typ": "JWT"}).encode())
    payload = _b64(json.dumps(claims).encode())
    secret = json.dumps(key.public_jwk, sort_keys=True).encode()
    mac = hmac.new(secret, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{_b64(mac)}"


def _flipped_signature(position: int) -> Mutation:
    def mutate(key: ClientKey, claims: dict[str, Any]) -> str:
        header, payload, signature = _segments(sign(key, claims))
        raw = bytearray(_unb64(signature))
        raw[position % len(raw)] ^= 0x01
        return ".".join([header, payload, _b64(bytes(raw))])

    return mutate


def _stranger_signed(key: ClientKey, claims: dict[str, Any]) -> str:
    return sign(client_key(key.alg), claims, headers={"kid": key.kid})


def _payload_changed_after_signing(key: ClientKey, claims: dict[str, Any]) -> str:
    header, _, signature = _segments(sign(key, claims))
    tampered = {**claims, "jti": claims["jti"] + "x"}
    return ".".join([header, _b64(json.dumps(tampered).encode()), signature])


mutations: st.SearchStrategy[Mutation] = st.one_of(
    required.map(_deleted),
    st.tuples(st.sampled_from(["iss", "sub"]), not_the_client).map(lambda t: _set(*t)),
    foreign_audience.map(lambda a: _set("aud", a)),
    foreign_audience.map(lambda a: _set("aud", [a])),
    seconds.map(lambda s: _shifted("exp", "iat", -(300 + LEEWAY + s))),  # expired
    seconds.map(lambda s: _shifted("exp", "iat", MAX_LIFETIME + LEEWAY + s)),  # too long
    seconds.map(lambda s: _shifted("iat", "iat", LEEWAY + s)),  # issued in the future
    seconds.map(lambda s: _shifted("nbf", "iat", LEEWAY + s)),  # not yet valid
    st.sampled_from(["", 7, None, ["j"], "j" * 257]).map(lambda v: _set("jti", v)),
    st.sampled_from([str(now_ish + 300), float(now_ish) + 300.5, True]).map(
        lambda v: _set("exp", v)
    ),
    st.sampled_from(["none", "HS256", "RS384", "ES384", "PS512", "EdDSA", "ES256", "RS256"]).map(
        lambda alg: _header({"alg": alg})  # no kid, or the wrong alg for the key and signature
    ),
    st.text(min_size=1, max_size=20).map(lambda kid: _header({"alg": "ES256", "kid": kid})),
    st.just(_alg_none),
    st.just(_hmac_with_the_public_key),
    st.integers(min_value=0, max_value=600).map(_flipped_signature),
    st.just(_stranger_signed),
    st.just(_payload_changed_after_signing),
)


def _post(http: TestClient[Any], client_assertion: str) -> Any:
    return http.post("/oauth2/token", data=assertion_form(client_assertion))


@settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(which=st.integers(min_value=0, max_value=2), mutation=mutations)
def test_every_mutated_assertion_is_refused_and_only_the_untouched_one_succeeds_once(
    app: tuple[TestClient[Any], Runtime, list[Keyed]], which: int, mutation: Mutation
) -> None:
    http, runtime, keyed = app
    key, client_id = keyed[which]
    claims = assertion_claims(client_id)
    valid = sign(key, claims)
    before = runtime.ledger.recorder.max_notification_id()
    mutated = mutation(key, claims)
    assert mutated != valid
    refused = _post(http, mutated)
    assert (refused.status_code, refused.json()["error"]) == (401, "invalid_client")
    assert runtime.ledger.recorder.max_notification_id() == before  # nothing written
    assert _post(http, valid).status_code == 200  # a forgery never burns the real jti
    replayed = _post(http, valid)
    assert (replayed.status_code, replayed.json()["error"]) == (401, "invalid_client")
