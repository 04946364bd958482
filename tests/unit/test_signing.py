"""Signing keys, kids (RFC 7638) and the JWK Set."""

import json
import stat
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
import pytest
from jwt.algorithms import ECAlgorithm

from adapters.signing import (
    ActiveKey,
    JwtSigner,
    JwtVerifier,
    KeyRing,
    NoSigningKey,
    RingEntry,
    UnsupportedAlgorithm,
    VerificationKey,
    generate_key,
    jwk_thumbprint,
)


def test_rfc_7638_thumbprint_example() -> None:
    # RFC 7638 §3.1: the example RSA key and its thumbprint.
    jwk = {
        "kty": "RSA",
        "n": (
            "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1"
            "L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4"
            "QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbO"
            "pbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csF"
            "Cur-kEgU8awapJzKnqDKgw"
        ),
        "e": "AQAB",
        "alg": "RS256",
        "kid": "2011-04-29",
    }
    assert jwk_thumbprint(jwk) == "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"


@pytest.mark.parametrize("alg", ["ES256", "RS256", "EdDSA"])
def test_a_signed_token_verifies_with_the_published_jwk(tmp_path: Path, alg: str) -> None:
    keys = KeyRing.load(tmp_path, alg)
    token = JwtSigner(keys).sign({"sub": "c1", "aud": "https://api"})
    header = jwt.get_unverified_header(token)
    assert header["typ"] == "at+jwt"
    assert header["alg"] == alg
    [jwk] = [k for k in keys.jwks()["keys"] if k["kid"] == header["kid"]]
    key = jwt.PyJWK(jwk).key
    assert jwt.decode(token, key, algorithms=[alg], audience="https://api")["sub"] == "c1"


def test_the_key_is_generated_once_into_a_0600_file(tmp_path: Path) -> None:
    first = KeyRing.load(tmp_path, "ES256").active.kid
    assert KeyRing.load(tmp_path, "ES256").active.kid == first
    [pem] = tmp_path.glob("signing-*.pem")
    assert stat.S_IMODE(pem.stat().st_mode) == 0o600


def test_the_jwks_holds_no_private_members(tmp_path: Path) -> None:
    KeyRing.load(tmp_path, "RS256")
    for key in KeyRing.load(tmp_path, "ES256").jwks()["keys"]:
        assert not {"d", "p", "q", "dp", "dq", "qi"} & key.keys()


def test_keys_of_a_previous_algorithm_stay_published(tmp_path: Path) -> None:
    old = KeyRing.load(tmp_path, "RS256").active.kid
    ring = KeyRing.load(tmp_path, "ES256")
    assert ring.active.alg == "ES256"
    assert old in {k["kid"] for k in ring.jwks()["keys"]}


def test_the_verifier_accepts_its_own_tokens_and_stays_within_its_cache_size(
    tmp_path: Path,
) -> None:
    from adapters.signing import JwtVerifier, TokenNotVerified

    keys = KeyRing.load(tmp_path, "ES256")
    signer, verifier = JwtSigner(keys), JwtVerifier(keys, "https://iss", cache_size=3)
    claims = {"iss": "https://iss", "aud": "a", "sub": "s", "client_id": "s", "iat": 1, "exp": 2}
    for n in range(10):
        assert verifier.verify(signer.sign({**claims, "jti": str(n)}))["jti"] == str(n)
        assert len(verifier._cache) <= 3
    with pytest.raises(TokenNotVerified):
        verifier.verify(JwtSigner(keys).sign({**claims, "iss": "https://other", "jti": "x"}))


T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
T1 = T0 + timedelta(hours=1)


def test_a_key_known_only_by_its_public_half_is_published_and_verifies_but_never_signs() -> None:
    sealed_away, current = generate_key("ES256"), generate_key("ES256")
    public_half = VerificationKey.from_jwk(sealed_away.public_jwk)
    entries = [RingEntry(T0, T1, key=public_half), RingEntry(T1, key=current)]
    assert [e.can_sign for e in entries] == [False, True]
    ring = KeyRing(entries)
    assert ring.active_at(T1).kid == current.kid
    assert {k["kid"] for k in ring.jwks(T1)["keys"]} == {sealed_away.kid, current.kid}
    claims = {"iss": "https://iss", "aud": "a", "sub": "s", "client_id": "s", "iat": 1, "exp": 2}
    earlier = ActiveKey(sealed_away).sign({**claims, "jti": "1"})  # signed before it was lost
    assert JwtVerifier(ring, "https://iss").verify(earlier)["jti"] == "1"
    with pytest.raises(NoSigningKey, match=sealed_away.kid):  # its own turn: nothing signs
        ring.active_at(T0)


@pytest.mark.parametrize(
    "damage",
    [
        lambda jwk: {**jwk, "kid": "another-kid"},  # not its thumbprint
        lambda jwk: {**jwk, "x": jwk["y"]},  # a point off the curve
        lambda jwk: {**jwk, "alg": "HS256"},
        lambda jwk: {"kty": "EC"},
    ],
)
def test_a_damaged_public_jwk_is_refused_rather_than_published(
    damage: Callable[[dict[str, Any]], dict[str, Any]],
) -> None:
    jwk = generate_key("ES256").public_jwk
    with pytest.raises(UnsupportedAlgorithm, match=r"public signing key|thumbprint"):
        VerificationKey.from_jwk(damage(jwk))


def test_a_private_jwk_is_no_public_half() -> None:
    key = generate_key("ES256")
    private = {**json.loads(ECAlgorithm.to_jwk(key.private_key)), **key.public_jwk}
    with pytest.raises(UnsupportedAlgorithm):
        VerificationKey.from_jwk(private)
