"""Access-token signing keys (JWS, RFC 7515) and their public JWK Set (RFC 7517).

One private key per algorithm lives in the keys dir as PKCS#8 PEM (mode 0600), generated on
first use. The key objects are parsed once: re-parsing a PEM per token costs milliseconds.
The `kid` is the key's RFC 7638 JWK thumbprint.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
import msgspec
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

from adapters.files import create_once

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey
SUPPORTED_ALGORITHMS = ("ES256", "RS256", "EdDSA")
_THUMBPRINT_MEMBERS = {
    "EC": ("crv", "kty", "x", "y"),
    "RSA": ("e", "kty", "n"),
    "OKP": ("crv", "kty", "x"),
}


class UnsupportedAlgorithm(ValueError):
    """A signing algorithm keyledger does not offer."""


def _generate(alg: str) -> PrivateKey:
    if alg == "ES256":
        return ec.generate_private_key(ec.SECP256R1())
    if alg == "RS256":
        return rsa.generate_private_key(public_exponent=65537, key_size=3072)
    if alg == "EdDSA":
        return ed25519.Ed25519PrivateKey.generate()
    raise UnsupportedAlgorithm(
        f"signing algorithm must be one of {', '.join(SUPPORTED_ALGORITHMS)}"
    )


def _public_jwk(key: PrivateKey) -> dict[str, Any]:
    public = key.public_key()
    if isinstance(public, ec.EllipticCurvePublicKey):
        return ECAlgorithm.to_jwk(public, as_dict=True)
    if isinstance(public, rsa.RSAPublicKey):
        return RSAAlgorithm.to_jwk(public, as_dict=True)
    return OKPAlgorithm.to_jwk(public, as_dict=True)


def _alg_of(key: PrivateKey) -> str:
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return "ES256"
    if isinstance(key, rsa.RSAPrivateKey):
        return "RS256"
    return "EdDSA"


def jwk_thumbprint(jwk: dict[str, Any]) -> str:
    """RFC 7638 §3: SHA-256 over the required members, sorted, no whitespace; base64url."""
    members = {k: jwk[k] for k in _THUMBPRINT_MEMBERS[jwk["kty"]]}
    canonical = json.dumps(members, separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(hashlib.sha256(canonical).digest()).rstrip(b"=").decode()


@dataclass(frozen=True)
class SigningKey:
    """A private signing key with its algorithm, kid and public JWK."""

    alg: str
    kid: str
    private_key: PrivateKey
    public_jwk: dict[str, Any]

    @classmethod
    def from_private_key(cls, key: PrivateKey) -> SigningKey:
        alg = _alg_of(key)
        jwk = _public_jwk(key)
        kid = jwk_thumbprint(jwk)
        return cls(
            alg=alg,
            kid=kid,
            private_key=key,
            public_jwk={**jwk, "kid": kid, "alg": alg, "use": "sig"},
        )


def _key_path(keys_dir: Path, alg: str) -> Path:
    return keys_dir / f"signing-{alg.lower()}.pem"


def load_or_create_key(keys_dir: Path, alg: str) -> SigningKey:
    """The key for `alg` from the keys dir, generated there on first use."""
    if alg not in SUPPORTED_ALGORITHMS:
        raise UnsupportedAlgorithm(
            f"signing algorithm must be one of {', '.join(SUPPORTED_ALGORITHMS)}"
        )
    path = _key_path(keys_dir, alg)
    if not path.exists():
        create_once(path, _pem(_generate(alg)))
    return _parse(path.read_bytes())


def _pem(key: PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _parse(pem: bytes) -> SigningKey:
    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(
        key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey
    ):
        raise UnsupportedAlgorithm("unsupported key type in the keys dir")
    return SigningKey.from_private_key(key)


class KeyRing:
    """The active signing key and every key whose tokens may still be verified."""

    def __init__(self, active: SigningKey, published: list[SigningKey]) -> None:
        self.active = active
        self.published = published

    @classmethod
    def load(cls, keys_dir: Path, alg: str) -> KeyRing:
        active = load_or_create_key(keys_dir, alg)
        others = [
            _parse(path.read_bytes())
            for path in sorted(keys_dir.glob("signing-*.pem"))
            if path != _key_path(keys_dir, alg)
        ]
        return cls(active, [active, *others])

    def jwks(self) -> dict[str, Any]:
        """The JWK Set served at `/oauth2/jwks`: public members only."""
        return {"keys": [k.public_jwk for k in self.published]}


def _b64url(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def _signature(key: PrivateKey, signing_input: bytes) -> bytes:
    """RFC 7518 §3.3/§3.4 and RFC 8037 §3.1 signature bytes for the key's algorithm."""
    if isinstance(key, ec.EllipticCurvePrivateKey):
        r, s = decode_dss_signature(key.sign(signing_input, ec.ECDSA(hashes.SHA256())))
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")  # JWS wants R || S, not DER
    if isinstance(key, rsa.RSAPrivateKey):
        return key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
    return key.sign(signing_input)


class JwtSigner:
    """Signs RFC 9068 access tokens with the active key (JWS compact serialization, RFC 7515 §7.1).

    The protected header never changes, so it is encoded once; PyJWT's general-purpose
    encoder costs about as much again as the signature itself. Tokens are verified with PyJWT
    in the tests, so an independent implementation checks every one of them.
    """

    def __init__(self, keys: KeyRing) -> None:
        self._key = keys.active
        header = {"alg": keys.active.alg, "kid": keys.active.kid, "typ": "at+jwt"}
        self._header = _b64url(msgspec.json.encode(header)) + b"."

    @property
    def kid(self) -> str:
        return self._key.kid

    def sign(self, claims: dict[str, Any]) -> str:
        signing_input = self._header + _b64url(msgspec.json.encode(claims))
        signature = _signature(self._key.private_key, signing_input)
        return (signing_input + b"." + _b64url(signature)).decode("ascii")


class TokenNotVerified(Exception):
    """Not an access token this server signed (malformed, wrong key or type, forged)."""


class JwtVerifier:
    """Checks this server's own access tokens: RFC 9068 §4 signature, `typ` and `iss`.

    Time and audience are the caller's to judge. Verified tokens are cached (bounded): a
    resource server introspects the same token many times, and ECDSA verification is the
    dearest step. Only successes are cached, keyed by the whole token string; at most
    `cache_size` of them (about 1.5 KB each), cleared whole when full.
    """

    def __init__(self, keys: KeyRing, issuer: str, cache_size: int = 20_000) -> None:
        self._keys = {k.kid: k for k in keys.published}
        self._issuer = issuer
        self._cache: dict[str, dict[str, Any]] = {}
        self._cache_size = cache_size

    def verify(self, token: str) -> dict[str, Any]:
        cached = self._cache.get(token)
        if cached is not None:
            return cached
        claims = self._verify(token)
        if len(self._cache) >= self._cache_size:
            self._cache.clear()
        self._cache[token] = claims
        return claims

    def _verify(self, token: str) -> dict[str, Any]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise TokenNotVerified("malformed token") from None
        if header.get("typ") != "at+jwt":  # RFC 9068 §4: reject other token types
            raise TokenNotVerified("not an access token")
        key = self._keys.get(str(header.get("kid")))
        if key is None or header.get("alg") != key.alg:
            raise TokenNotVerified("unknown signing key")
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key.private_key.public_key(),
                algorithms=[key.alg],
                issuer=self._issuer,
                options={
                    "require": ["iss", "sub", "aud", "exp", "iat", "jti", "client_id"],
                    "verify_aud": False,
                    "verify_exp": False,
                    "verify_iat": False,
                },
            )
        except jwt.PyJWTError:
            raise TokenNotVerified("the token is not valid here") from None
        if not isinstance(claims["exp"], int) or not isinstance(claims["iat"], int):
            raise TokenNotVerified("exp and iat must be integers")
        return claims
