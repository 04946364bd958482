"""Signing keys, kids (RFC 7638) and the JWK Set."""

import stat
from pathlib import Path

import jwt
import pytest

from adapters.signing import JwtSigner, KeyRing, jwk_thumbprint


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
