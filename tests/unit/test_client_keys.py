"""A private_key_jwt client's registered JWK Set: public keys only, usable for signatures."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm, get_default_algorithms

from adapters.client_assertion import check_public_keys
from domain.client import PRIVATE_KEY_JWT, Client, ClientCommandRejected
from domain.client_keys import public_jwks
from domain.client_settings import ClientSettings, InvalidClientSettings
from projections.clients import evolve
from tests.assertions import client_key, jwks_of

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
SETTINGS = ClientSettings.create(name="signer", allowed_scopes=["a"])


def private_jwk(alg: str) -> dict[str, Any]:
    jwk: dict[str, Any] = json.loads(
        get_default_algorithms()[alg].to_jwk(client_key(alg).private_key)
    )
    return jwk


@pytest.mark.parametrize("alg", ["RS256", "ES256", "EdDSA"])
def test_a_private_key_is_refused_with_a_message_that_says_so(alg: str) -> None:
    with pytest.raises(InvalidClientSettings, match="private key material"):
        public_jwks({"keys": [private_jwk(alg)]})


def test_a_symmetric_key_is_refused() -> None:
    with pytest.raises(InvalidClientSettings, match="private key material"):
        public_jwks({"keys": [{"kty": "oct", "k": "c2VjcmV0"}]})


def test_an_rsa_key_under_2048_bits_is_refused() -> None:
    small = rsa.generate_private_key(65537, 1024).public_key()  # noqa: S505 - the point
    with pytest.raises(InvalidClientSettings, match="under 2048 bits"):
        public_jwks({"keys": [RSAAlgorithm.to_jwk(small, as_dict=True)]})


def test_an_ec_key_must_be_on_p256() -> None:
    jwk = {**client_key("ES256").public_jwk, "crv": "P-384"}
    with pytest.raises(InvalidClientSettings, match="crv must be P-256"):
        public_jwks({"keys": [jwk]})


def test_several_keys_each_need_their_own_kid() -> None:
    first, second = client_key("ES256", kid="same"), client_key("EdDSA", kid="same")
    with pytest.raises(InvalidClientSettings, match="its own kid"):
        public_jwks(jwks_of(first, second))


def test_a_key_for_encryption_or_another_algorithm_is_refused() -> None:
    jwk = client_key("ES256").public_jwk
    with pytest.raises(InvalidClientSettings, match="use must be sig"):
        public_jwks({"keys": [{**jwk, "use": "enc"}]})
    with pytest.raises(InvalidClientSettings, match="alg must be ES256"):
        public_jwks({"keys": [{**jwk, "alg": "HS256"}]})


@pytest.mark.parametrize(
    "jwks", [None, [], {"keys": []}, {"keys": "x"}, {"keys": [1]}, {"keys": [{}] * 11}]
)
def test_anything_but_a_jwk_set_of_one_to_ten_keys_is_refused(jwks: Any) -> None:
    with pytest.raises(InvalidClientSettings):
        public_jwks(jwks)


def test_only_public_members_are_kept() -> None:
    jwk = {**client_key("RS256").public_jwk, "x5c": ["..."], "ext": True}
    [kept] = public_jwks({"keys": [jwk]})
    assert set(kept) == {"kty", "n", "e", "kid", "use"}


def test_a_point_off_the_curve_is_refused_when_the_key_is_loaded() -> None:
    jwk = client_key("ES256").public_jwk
    jwk["y"] = jwk["x"]
    with pytest.raises(InvalidClientSettings, match="not a usable public key"):
        check_public_keys(public_jwks({"keys": [jwk]}))


def keyed_client() -> Client:
    return Client.register(
        client_id=uuid4(),
        settings=SETTINGS,
        secret_hash=None,
        now=NOW,
        actor="t",
        jwks=jwks_of(client_key("ES256")),
    )


def test_a_client_registered_with_keys_has_no_secret_and_cannot_rotate_one() -> None:
    client = keyed_client()
    assert client.auth_method == PRIVATE_KEY_JWT
    assert client.secrets == []
    with pytest.raises(ClientCommandRejected, match="private_key_jwt"):
        client.rotate_secret(secret_hash="h", now=NOW, grace=NOW - NOW, actor="t", reason=None)


def test_a_secret_client_cannot_replace_keys() -> None:
    client = Client.register(
        client_id=uuid4(), settings=SETTINGS, secret_hash="h", now=NOW, actor="t"
    )
    with pytest.raises(ClientCommandRejected, match="client_secret_basic"):
        client.replace_keys(jwks=jwks_of(client_key()), now=NOW, actor="t", reason=None)


def test_a_client_has_either_a_secret_or_keys() -> None:
    for secret_hash, jwks in (("h", jwks_of(client_key())), (None, None)):
        with pytest.raises(InvalidClientSettings, match="either a secret or public keys"):
            Client.register(
                client_id=uuid4(),
                settings=SETTINGS,
                secret_hash=secret_hash,
                now=NOW,
                actor="t",
                jwks=jwks,
            )


def test_replaced_keys_fold_into_the_read_model() -> None:
    client = keyed_client()
    new = client_key("EdDSA")
    client.replace_keys(jwks=jwks_of(new), now=NOW, actor="t", reason="yearly")
    record = None
    for event in client.collect_events():
        record = evolve(record, event)
    assert record is not None
    assert record.auth_method == PRIVATE_KEY_JWT
    assert [k["kid"] for k in record.jwks] == [new.kid]


def test_a_registration_stored_before_keys_existed_reads_as_a_secret_client() -> None:
    """The mapper loads stored events without calling `__init__`: missing fields are defaults."""
    stored = {
        "originator_id": uuid4(),
        "originator_version": 1,
        "timestamp": NOW,
        "originator_topic": "domain.client:Client",
        "name": "old",
        "allowed_scopes": ["a"],
        "default_scopes": ["a"],
        "token_ttl": 300,
        "audiences": [],
        "secret_hash": "h",
        "registered_at": NOW,
        "actor": "t",
        "reason": None,
    }
    event = object.__new__(Client.Registered)
    object.__setattr__(event, "__dict__", stored)
    record = evolve(None, event)
    assert record is not None
    assert record.auth_method == "client_secret_basic"
    assert record.jwks == ()
    assert [s.generation for s in record.secrets] == [1]
