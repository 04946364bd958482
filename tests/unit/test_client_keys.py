"""A private_key_jwt client's registered JWK Set: public keys only, usable for signatures."""

from __future__ import annotations

import base64
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


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def test_an_rsa_key_one_bit_under_2048_is_refused() -> None:
    """A 2047-bit modulus still takes 256 bytes: the key's size is its modulus's bit length."""
    short = rsa.generate_private_key(65537, 2047).public_key()  # noqa: S505 - the point
    with pytest.raises(InvalidClientSettings, match=r"^jwks\.keys\[0\] is an RSA key under 2048"):
        public_jwks({"keys": [RSAAlgorithm.to_jwk(short, as_dict=True)]})


def test_leading_zero_bytes_do_not_make_a_small_rsa_modulus_big_enough() -> None:
    small_key = rsa.generate_private_key(65537, 1024)  # noqa: S505 - the point
    small = RSAAlgorithm.to_jwk(small_key.public_key(), as_dict=True)
    n = base64.urlsafe_b64decode(small["n"] + "==")
    padded = {**small, "n": b64url(b"\0" * (256 - len(n)) + n)}
    with pytest.raises(InvalidClientSettings, match="under 2048 bits"):
        public_jwks({"keys": [padded]})


def test_an_rsa_key_of_2048_bits_is_kept() -> None:
    [kept] = public_jwks({"keys": [client_key("RS256").public_jwk]})
    assert kept["kty"] == "RSA"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"n": "AQAB="}, r"^jwks\.keys\[0\]\.n must be unpadded base64url$"),
        ({"n": ""}, r"^jwks\.keys\[0\]\.n must be unpadded base64url$"),
        ({"n": 7}, r"^jwks\.keys\[0\]\.n must be unpadded base64url$"),
        ({"n": "A"}, r"^jwks\.keys\[0\]\.n must be unpadded base64url$"),
        ({"e": "AQ=B"}, r"^jwks\.keys\[0\]\.e must be unpadded base64url$"),
        ({"e": None}, r"^jwks\.keys\[0\]\.e must be unpadded base64url$"),
    ],
)
def test_rsa_members_must_be_unpadded_base64url(change: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidClientSettings, match=message):
        public_jwks({"keys": [{**client_key("RS256").public_jwk, **change}]})


def test_a_2048_bit_modulus_sent_with_leading_zero_octets_is_judged_by_its_value() -> None:
    jwk = client_key("RS256").public_jwk
    n = b"\0" * 6 + base64.urlsafe_b64decode(jwk["n"] + "==")
    padded = {**jwk, "n": b64url(n)}  # 350 characters: an unpadded group of 2
    assert public_jwks({"keys": [padded]})[0]["n"] == padded["n"]


@pytest.mark.parametrize("alg", ["RS256", "ES256", "EdDSA"])
def test_only_the_public_members_of_each_key_type_are_kept(alg: str) -> None:
    jwk = client_key(alg).public_jwk
    members = ("kty", "n", "e", "crv", "x", "y", "kid")
    public = {member: jwk[member] for member in members if member in jwk}
    assert public_jwks({"keys": [jwk]}) == [{**public, "use": "sig"}]


@pytest.mark.parametrize(
    ("jwk", "message"),
    [
        ("not a key", r"^jwks\.keys\[0\] must be a JSON object$"),
        ({"kty": "oct"}, r"^jwks\.keys\[0\]\.kty must be RSA, EC or OKP$"),
        ({"kty": "RSA", "use": "enc"}, r"^jwks\.keys\[0\]\.use must be sig$"),
        (
            {"kty": "RSA", "alg": "ES256"},
            r"^jwks\.keys\[0\]\.alg must be RS256 or PS256 for a RSA key$",
        ),
        (
            {"kty": "EC", "kid": ""},
            r"^jwks\.keys\[0\]\.kid must be a string of 1 to 200 characters$",
        ),
        ({"kty": "EC", "kid": 7}, r"^jwks\.keys\[0\]\.kid must be a string"),
        ({"kty": "EC", "kid": "k" * 201}, r"^jwks\.keys\[0\]\.kid must be a string"),
        ({"kty": "OKP", "crv": "X25519"}, r"^jwks\.keys\[0\]\.crv must be Ed25519 for a OKP key$"),
    ],
)
def test_each_shape_error_names_the_key_and_member(jwk: Any, message: str) -> None:
    with pytest.raises(InvalidClientSettings, match=message):
        public_jwks({"keys": [jwk]})


@pytest.mark.parametrize("kid", ["k", "k" * 200])
def test_a_kid_of_1_to_200_characters_is_kept(kid: str) -> None:
    [kept] = public_jwks({"keys": [{**client_key("ES256").public_jwk, "kid": kid}]})
    assert kept["kid"] == kid


def test_a_private_key_is_refused_naming_each_private_member() -> None:
    jwk = {**client_key("ES256").public_jwk, "d": "x", "k": "y"}
    expected = (
        "jwks.keys[0] holds private key material (d, k): register the public key only, "
        "and keep the private key with the client"
    )
    with pytest.raises(InvalidClientSettings) as caught:
        public_jwks({"keys": [jwk]})
    assert str(caught.value) == expected


@pytest.mark.parametrize(("alg", "member"), [("ES256", "y"), ("ES256", "x"), ("EdDSA", "x")])
def test_a_coordinate_of_the_wrong_length_is_refused(alg: str, member: str) -> None:
    jwk = {**client_key(alg).public_jwk, member: b64url(b"\1" * 31)}
    crv = jwk["crv"]
    with pytest.raises(InvalidClientSettings, match=rf"^jwks\.keys\[0\]\.{member} is not a {crv}"):
        public_jwks({"keys": [jwk]})


def test_an_ec_key_needs_its_y_coordinate() -> None:
    jwk = client_key("ES256").public_jwk
    del jwk["y"]
    with pytest.raises(InvalidClientSettings, match=r"^jwks\.keys\[0\]\.y must be unpadded"):
        public_jwks({"keys": [jwk]})


def test_a_pinned_algorithm_is_kept_and_every_key_is_for_signatures() -> None:
    [kept] = public_jwks({"keys": [{**client_key("RS256").public_jwk, "alg": "PS256"}]})
    assert (kept["alg"], kept["use"]) == ("PS256", "sig")


def test_a_bad_key_in_a_set_is_named_by_its_position() -> None:
    good, bad = client_key("ES256").public_jwk, {**client_key("EdDSA").public_jwk, "crv": "P-256"}
    with pytest.raises(InvalidClientSettings, match=r"^jwks\.keys\[1\]\.crv"):
        public_jwks({"keys": [good, bad]})


def test_a_set_of_ten_keys_is_kept_and_eleven_are_refused() -> None:
    keys = [{**client_key("EdDSA").public_jwk, "kid": f"k{i}"} for i in range(11)]
    assert len(public_jwks({"keys": keys[:10]})) == 10
    with pytest.raises(InvalidClientSettings, match=r"^jwks must hold 1 to 10 keys$"):
        public_jwks({"keys": keys})


def test_something_other_than_a_jwk_set_says_what_a_jwk_set_is() -> None:
    with pytest.raises(InvalidClientSettings) as caught:
        public_jwks([])
    assert str(caught.value) == 'jwks must be a JWK Set: {"keys": [ ... ]}'


def test_one_key_needs_no_kid_but_two_keys_each_need_one() -> None:
    jwk = client_key("ES256").public_jwk
    del jwk["kid"]
    assert public_jwks({"keys": [jwk]}) == [{**jwk, "use": "sig"}]
    other = client_key("EdDSA").public_jwk
    with pytest.raises(InvalidClientSettings) as caught:
        public_jwks({"keys": [jwk, other]})
    assert str(caught.value) == "with more than one key, every key needs its own kid"


def test_two_keys_with_their_own_kids_are_kept() -> None:
    first, second = client_key("ES256"), client_key("EdDSA")
    assert [k["kid"] for k in public_jwks(jwks_of(first, second))] == [first.kid, second.kid]
