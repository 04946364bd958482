"""A `private_key_jwt` client's public keys: an inline JWK Set (RFC 7517 §5, RFC 7591 §2).

Pure shape checks on the JSON an admin registers; whether each key is a valid point or
modulus is checked again where the key is loaded (the adapter). Only public members are
kept, so a key never carries private material into an event, the audit topic or a log.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from domain.client_settings import InvalidClientSettings

# RFC 7523 §3 signatures keyledger accepts, by key type; never `none` or HS* (a shared secret).
ASSERTION_ALGORITHMS = ("RS256", "PS256", "ES256", "EdDSA")
ALGORITHMS_BY_KTY = {"RSA": ("RS256", "PS256"), "EC": ("ES256",), "OKP": ("EdDSA",)}
MAX_KEYS = 10
MIN_RSA_BITS = 2048
MAX_KID = 200
_PUBLIC_MEMBERS = {
    "RSA": ("n", "e"),
    "EC": ("crv", "x", "y"),
    "OKP": ("crv", "x"),
}
# RFC 7518 §6.2.2, §6.3.2, RFC 8037 §2 private members, and `k` of a symmetric key.
_PRIVATE_MEMBERS = ("d", "p", "q", "dp", "dq", "qi", "oth", "k")
_CURVE_BYTES = {"P-256": 32, "Ed25519": 32}


def _b64url_bytes(value: Any, what: str) -> bytes:
    if not isinstance(value, str) or not value or "=" in value:
        raise InvalidClientSettings(f"{what} must be unpadded base64url")
    try:
        return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError):
        raise InvalidClientSettings(f"{what} must be unpadded base64url") from None


def _public_key(jwk: Any, index: int) -> dict[str, Any]:
    where = f"jwks.keys[{index}]"
    if not isinstance(jwk, dict):
        raise InvalidClientSettings(f"{where} must be a JSON object")
    private = [m for m in _PRIVATE_MEMBERS if m in jwk]
    if private:
        raise InvalidClientSettings(
            f"{where} holds private key material ({', '.join(private)}): register the public "
            "key only, and keep the private key with the client"
        )
    kty = jwk.get("kty")
    if kty not in _PUBLIC_MEMBERS:
        raise InvalidClientSettings(f"{where}.kty must be RSA, EC or OKP")
    if jwk.get("use", "sig") != "sig":
        raise InvalidClientSettings(f"{where}.use must be sig")
    alg = jwk.get("alg")
    if alg is not None and alg not in ALGORITHMS_BY_KTY[kty]:
        allowed = " or ".join(ALGORITHMS_BY_KTY[kty])
        raise InvalidClientSettings(f"{where}.alg must be {allowed} for a {kty} key")
    kid = jwk.get("kid")
    if kid is not None and (not isinstance(kid, str) or not 0 < len(kid) <= MAX_KID):
        raise InvalidClientSettings(f"{where}.kid must be a string of 1 to {MAX_KID} characters")
    if kty == "RSA":
        bits = int.from_bytes(_b64url_bytes(jwk.get("n"), f"{where}.n")).bit_length()
        if bits < MIN_RSA_BITS:
            raise InvalidClientSettings(f"{where} is an RSA key under {MIN_RSA_BITS} bits")
        _b64url_bytes(jwk.get("e"), f"{where}.e")
    else:
        crv = jwk.get("crv")
        expected = "P-256" if kty == "EC" else "Ed25519"
        if crv != expected:
            raise InvalidClientSettings(f"{where}.crv must be {expected} for a {kty} key")
        for member in ("x", "y") if kty == "EC" else ("x",):
            if len(_b64url_bytes(jwk.get(member), f"{where}.{member}")) != _CURVE_BYTES[crv]:
                raise InvalidClientSettings(f"{where}.{member} is not a {crv} coordinate")
    kept = {"kty": kty, **{m: jwk[m] for m in _PUBLIC_MEMBERS[kty]}, "use": "sig"}
    if kid is not None:
        kept["kid"] = kid
    if alg is not None:
        kept["alg"] = alg
    return kept


def public_jwks(jwks: Any) -> list[dict[str, Any]]:
    """The validated public keys of a JWK Set `{"keys": [...]}`, or `InvalidClientSettings`."""
    if not isinstance(jwks, dict) or not isinstance(jwks.get("keys"), list):
        raise InvalidClientSettings('jwks must be a JWK Set: {"keys": [ ... ]}')
    keys = jwks["keys"]
    if not 1 <= len(keys) <= MAX_KEYS:
        raise InvalidClientSettings(f"jwks must hold 1 to {MAX_KEYS} keys")
    public = [_public_key(jwk, i) for i, jwk in enumerate(keys)]
    kids = [k.get("kid") for k in public]
    if len(public) > 1 and (None in kids or len(set(kids)) != len(kids)):
        raise InvalidClientSettings("with more than one key, every key needs its own kid")
    return public
