"""Access-token signing keys (JWS, RFC 7515) and their public JWK Set (RFC 7517).

One private key per algorithm lives in the keys dir as PKCS#8 PEM (mode 0600), generated on
first use. The key objects are parsed once: re-parsing a PEM per token costs milliseconds.
The `kid` is the key's RFC 7638 JWK thumbprint. A key whose private half this process cannot
open is still known by its public half: it is published and verifies its tokens, never signs.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jwt
import msgspec
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

from adapters.files import create_once
from domain.signing_keys import KeyTurn

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey
PublicKey = ec.EllipticCurvePublicKey | rsa.RSAPublicKey | ed25519.Ed25519PublicKey
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
class VerificationKey:
    """A signing key's public half: what the JWK Set publishes and what checks its tokens."""

    alg: str
    kid: str
    public_jwk: dict[str, Any]
    public_key: PublicKey

    @classmethod
    def from_jwk(cls, jwk: dict[str, Any]) -> VerificationKey:
        """The public JWK a key's event keeps unsealed; its `kid` must be its thumbprint, so
        a damaged JWK is refused rather than published."""
        try:
            key = jwt.PyJWK(jwk).key
            kid = jwk_thumbprint(jwk)
        except (jwt.PyJWTError, KeyError, TypeError, ValueError) as exc:
            raise UnsupportedAlgorithm(f"not a public signing key: {exc}") from None
        if not isinstance(key, PublicKey) or jwk.get("alg") not in SUPPORTED_ALGORITHMS:
            raise UnsupportedAlgorithm("not a public signing key")
        if jwk.get("kid") != kid:
            raise UnsupportedAlgorithm("the JWK's kid is not its RFC 7638 thumbprint")
        return cls(alg=jwk["alg"], kid=kid, public_jwk=dict(jwk), public_key=key)


@dataclass(frozen=True)
class SigningKey(VerificationKey):
    """A private signing key with its algorithm, kid and public JWK."""

    private_key: PrivateKey

    @classmethod
    def from_private_key(cls, key: PrivateKey) -> SigningKey:
        alg = _alg_of(key)
        jwk = _public_jwk(key)
        kid = jwk_thumbprint(jwk)
        return cls(
            alg=alg,
            kid=kid,
            public_jwk={**jwk, "kid": kid, "alg": alg, "use": "sig"},
            public_key=key.public_key(),
            private_key=key,
        )


def generate_key(alg: str) -> SigningKey:
    """A fresh signing key for `alg`."""
    return SigningKey.from_private_key(_generate(alg))


def parse_private_key(key: object) -> PrivateKey:
    if not isinstance(
        key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey
    ):
        raise UnsupportedAlgorithm("unsupported signing key type")
    return key


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


def key_files(keys_dir: Path, alg: str) -> list[SigningKey]:
    """The PEM keys an earlier version kept in the keys dir, the one for `alg` last."""
    paths = sorted(keys_dir.glob("signing-*.pem"), key=lambda p: p == _key_path(keys_dir, alg))
    return [_parse(p.read_bytes()) for p in paths]


def _pem(key: PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _parse(pem: bytes) -> SigningKey:
    key = serialization.load_pem_private_key(pem, password=None)
    return SigningKey.from_private_key(parse_private_key(key))


@dataclass(frozen=True)
class RingEntry(KeyTurn):
    """A key with its turn: a `SigningKey` when its private half is open here, else only its
    `VerificationKey`, which is published and verifies but cannot take its turn to sign."""

    key: VerificationKey = field(kw_only=True)

    @property
    def can_sign(self) -> bool:
        return isinstance(self.key, SigningKey)


class NoSigningKey(RuntimeError):
    """No key signs at this moment (the ring is empty, every key is retired, or the key
    whose turn it is could not be opened by this process)."""


class KeyRing:
    """The signing keys one process knows, with their turns; replaced whole when keys change.

    Readers take `self._entries` once per call, so a concurrent `replace` never tears a read.
    """

    def __init__(self, entries: list[RingEntry]) -> None:
        self._entries: tuple[RingEntry, ...] = ()
        self._keys: dict[str, VerificationKey] = {}
        self._signers: dict[str, ActiveKey] = {}
        self.replace(entries)

    def replace(self, entries: list[RingEntry]) -> None:
        self._signers = {
            e.key.kid: self._signers.get(e.key.kid) or ActiveKey(e.key)
            for e in entries
            if isinstance(e.key, SigningKey)
        }
        self._keys = {e.key.kid: e.key for e in entries}
        self._entries = tuple(sorted(entries, key=lambda e: e.activates_at))
        # The moments the signing key can change, for `active_at`'s one-interval cache.
        self._turns = sorted(
            {t for e in entries for t in (e.activates_at, e.retires_at) if t is not None}
        )
        self._current: tuple[datetime, datetime, ActiveKey] | None = None

    @classmethod
    def load(cls, keys_dir: Path, alg: str) -> KeyRing:
        """The key files of the keys dir (the one for `alg` created if missing), `alg`'s
        signing: the ring of a version before keys were events, and of tools that need one."""
        active = load_or_create_key(keys_dir, alg)
        since = datetime.min.replace(tzinfo=UTC)
        others = [k for k in key_files(keys_dir, alg) if k.kid != active.kid]
        return cls(
            [RingEntry(since, key=active), *(RingEntry(since, since, key=k) for k in others)]
        )

    def active_at(self, t: datetime) -> ActiveKey:
        """The key that signs at `t` (the token endpoint asks per token: cached per turn)."""
        current = self._current
        if current is not None and current[0] <= t < current[1]:
            return current[2]
        signing = [e for e in self._entries if e.signs_at(t)]
        if not signing:
            raise NoSigningKey("no signing key is active")
        kid = signing[-1].key.kid
        active = self._signers.get(kid)
        if active is None:
            raise NoSigningKey(f"signing key {kid} signs now but could not be opened here")
        since = max((x for x in self._turns if x <= t), default=datetime.min.replace(tzinfo=UTC))
        until = min((x for x in self._turns if x > t), default=datetime.max.replace(tzinfo=UTC))
        self._current = (since, until, active)
        return active

    def signing_entry(self, t: datetime) -> RingEntry | None:
        """The entry whose turn it is at `t` (opened here or not), with its turn's times."""
        signing = [e for e in self._entries if e.signs_at(t)]
        return signing[-1] if signing else None

    @property
    def active(self) -> SigningKey:
        """The key signing now."""
        return self.active_at(datetime.now(UTC)).key

    def get(self, kid: str) -> VerificationKey | None:
        """Any key this ring knows by `kid` (a token's expiry is its verifier's to judge)."""
        return self._keys.get(kid)

    def published(self, t: datetime | None = None) -> list[VerificationKey]:
        at = datetime.now(UTC) if t is None else t
        return [e.key for e in reversed(self._entries) if e.published_at(at)]

    def jwks(self, t: datetime | None = None) -> dict[str, Any]:
        """The JWK Set served at `/oauth2/jwks` at `t`: public members only."""
        return {"keys": [k.public_jwk for k in self.published(t)]}


def _b64url(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


_ECDSA_SHA256 = ec.ECDSA(hashes.SHA256())  # immutable: built once, not per token


def _signature(key: PrivateKey, signing_input: bytes) -> bytes:
    """RFC 7518 §3.3/§3.4 and RFC 8037 §3.1 signature bytes for the key's algorithm."""
    if isinstance(key, ec.EllipticCurvePrivateKey):
        r, s = decode_dss_signature(key.sign(signing_input, _ECDSA_SHA256))
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")  # JWS wants R || S, not DER
    if isinstance(key, rsa.RSAPrivateKey):
        return key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
    return key.sign(signing_input)


class ActiveKey:
    """Signs RFC 9068 access tokens with one key (JWS compact serialization, RFC 7515 §7.1).

    The protected header never changes, so it is encoded once; PyJWT's general-purpose
    encoder costs about as much again as the signature itself. Tokens are verified with PyJWT
    in the tests, so an independent implementation checks every one of them.
    """

    def __init__(self, key: SigningKey) -> None:
        self.key = key
        header = {"alg": key.alg, "kid": key.kid, "typ": "at+jwt"}
        self._header = _b64url(msgspec.json.encode(header)) + b"."

    @property
    def kid(self) -> str:
        return self.key.kid

    def sign(self, claims: dict[str, Any]) -> str:
        signing_input = self._header + _b64url(msgspec.json.encode(claims))
        signature = _signature(self.key.private_key, signing_input)
        return (signing_input + b"." + _b64url(signature)).decode("ascii")


class JwtSigner:
    """The ring's key that signs at a given moment."""

    def __init__(self, keys: KeyRing) -> None:
        self._keys = keys

    def key_at(self, now: datetime) -> ActiveKey:
        return self._keys.active_at(now)

    def sign(self, claims: dict[str, Any]) -> str:
        """Sign with the key active now (tools and tests; the token endpoint uses `key_at`)."""
        return self.key_at(datetime.now(UTC)).sign(claims)


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
        self._keys = keys
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
                key.public_key,
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
