"""Every issued JWT verifies against the served JWKS and carries `typ: at+jwt` (RFC 9068)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jwt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.clock import FixedClock
from adapters.signing import JwtSigner, KeyRing
from api.usecases.client_authentication import ClientAuthenticator
from api.usecases.credentials import Credentials
from api.usecases.issuance import TokenIssuer
from domain.client import SecretSlot
from domain.client_record import ClientRecord
from domain.policy import TokenRequest
from tests.property.strategies import NOW, scope_sets

ISSUER = "https://auth.example"


class Collect:
    """An event writer that keeps what it was given (the store is not the subject here)."""

    def __init__(self) -> None:
        self.events: list[Any] = []

    async def submit(self, events: Sequence[Any]) -> None:
        self.events.extend(events)


class Lookup:
    def __init__(self, record: ClientRecord) -> None:
        self.record = record

    def get(self, client_id: str) -> ClientRecord | None:
        return self.record if client_id == self.record.client_id else None


class NoAssertions:
    """Secrets only here: any use of the assertion ports fails the test."""

    def verify(self, *args: Any) -> Any:
        raise AssertionError("no client assertion is presented in this test")

    def use(self, *args: Any) -> bool:
        raise AssertionError("no client assertion is presented in this test")


class PlainHash:
    def hash(self, secret: str) -> str:
        return "h:" + secret


@pytest.fixture(scope="module", params=["ES256", "RS256", "EdDSA"])
def keys(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> KeyRing:
    path: Path = tmp_path_factory.mktemp(request.param)
    return KeyRing.load(path, request.param)


@settings(max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    allowed=scope_sets.filter(bool),
    ttl=st.integers(60, 86_400),
    audiences=st.lists(
        st.sampled_from(["https://a.example", "urn:api:b", "https://c.example/x"]), unique=True
    ),
)
def test_every_issued_token_verifies_against_the_jwks(
    keys: KeyRing, allowed: frozenset[str], ttl: int, audiences: list[str]
) -> None:
    record = ClientRecord(
        client_id="client-1",
        name="c",
        status="active",
        allowed_scopes=allowed,
        default_scopes=allowed,
        token_ttl=ttl,
        audiences=tuple(sorted(audiences)),
        secrets=(SecretSlot(1, "h:s3cret", None),),
        version=3,
        registered_at=NOW,
        updated_at=NOW,
    )
    issuer = TokenIssuer(
        authenticator=ClientAuthenticator(
            Lookup(record), PlainHash(), NoAssertions(), NoAssertions()
        ),
        signer=JwtSigner(keys),
        writer=Collect(),
        clock=FixedClock(NOW),
        issuer=ISSUER,
    )
    issued = asyncio.run(
        issuer.issue(Credentials("client-1", "s3cret", "client_secret_basic"), TokenRequest(None))
    )
    header = jwt.get_unverified_header(issued.access_token)
    assert header["typ"] == "at+jwt"
    jwk_client = jwt.PyJWKSet.from_dict(keys.jwks())
    key = next(k for k in jwk_client.keys if k.key_id == header["kid"])
    claims = jwt.decode(
        issued.access_token,
        key.key,
        algorithms=[keys.active.alg],
        audience=list(record.audiences) or ISSUER,
        issuer=ISSUER,
        options={
            "verify_exp": False,
            "require": ["iss", "sub", "aud", "exp", "iat", "jti", "client_id"],
        },
    )
    assert claims["exp"] - claims["iat"] == ttl
    assert set(claims["scope"].split(" ")) == allowed
