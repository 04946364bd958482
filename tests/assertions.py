"""Client key pairs and RFC 7523 client assertions for the private_key_jwt tests."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ISSUER = "https://auth.example.test"
TOKEN_ENDPOINT = f"{ISSUER}/oauth2/token"


@dataclass(frozen=True)
class ClientKey:
    """A client's private key, the algorithm it signs with, and its public JWK."""

    alg: str
    private_key: Any
    kid: str

    @property
    def public_jwk(self) -> dict[str, Any]:
        public = self.private_key.public_key()
        if isinstance(public, rsa.RSAPublicKey):
            jwk = RSAAlgorithm.to_jwk(public, as_dict=True)
        elif isinstance(public, ec.EllipticCurvePublicKey):
            jwk = ECAlgorithm.to_jwk(public, as_dict=True)
        else:
            jwk = OKPAlgorithm.to_jwk(public, as_dict=True)
        return {**jwk, "kid": self.kid}


def client_key(alg: str = "ES256", kid: str | None = None) -> ClientKey:
    if alg in ("RS256", "PS256"):
        private: Any = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    elif alg == "ES256":
        private = ec.generate_private_key(ec.SECP256R1())
    else:
        private = ed25519.Ed25519PrivateKey.generate()
    return ClientKey(alg, private, kid or f"{alg.lower()}-{uuid.uuid4().hex[:8]}")


def jwks_of(*keys: ClientKey) -> dict[str, Any]:
    return {"keys": [k.public_jwk for k in keys]}


def assertion_claims(
    client_id: str, *, audience: str = TOKEN_ENDPOINT, lifetime: int = 300, now: float | None = None
) -> dict[str, Any]:
    issued = int(time.time() if now is None else now)
    return {
        "iss": client_id,
        "sub": client_id,
        "aud": audience,
        "iat": issued,
        "exp": issued + lifetime,
        "jti": str(uuid.uuid4()),
    }


def sign(
    key: ClientKey,
    claims: dict[str, Any],
    *,
    alg: str | None = None,
    headers: dict[str, Any] | None = None,
) -> str:
    header = {"kid": key.kid} if headers is None else headers
    return jwt.encode(claims, key.private_key, algorithm=alg or key.alg, headers=header)


def assertion(key: ClientKey, client_id: str, **kw: Any) -> str:
    return sign(key, assertion_claims(client_id, **kw))


def assertion_form(
    client_assertion: str, *, scope: str | None = None, **extra: str
) -> dict[str, str]:
    form = {
        "grant_type": "client_credentials",
        "client_assertion_type": JWT_BEARER,
        "client_assertion": client_assertion,
        **extra,
    }
    if scope is not None:
        form["scope"] = scope
    return form
