"""`private_key_jwt` client authentication: JWT client assertions, RFC 7523 §2.2 and §3.

RFC 7521 §4.2: `client_assertion_type` is
`urn:ietf:params:oauth:client-assertion-type:jwt-bearer` and `client_assertion` one JWT,
signed with a key the client registered. Every failure is `invalid_client`; its reason (for
the audit stream and logs, never the response) names the check that failed.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import jwt

from domain.client_keys import ALGORITHMS_BY_KTY, ASSERTION_ALGORITHMS
from domain.client_record import ClientRecord
from domain.client_settings import InvalidClientSettings
from domain.oauth_errors import InvalidClient

JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
MAX_JTI = 256
MAX_ASSERTION = 8 * 1024


def _fail(reason: str) -> InvalidClient:
    return InvalidClient(reason=reason)


def _segment(part: str) -> dict[str, Any]:
    try:
        value = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise _fail("malformed_assertion") from None
    if not isinstance(value, dict):
        raise _fail("malformed_assertion")
    return value


def assertion_subject(assertion: str) -> str:
    """The unverified `sub`: which client claims to have signed (RFC 7523 §3 item 2)."""
    parts = assertion.split(".")
    if len(assertion) > MAX_ASSERTION or len(parts) != 3:
        raise _fail("malformed_assertion")
    subject = _segment(parts[1]).get("sub")
    if not isinstance(subject, str) or not subject:
        raise _fail("assertion_subject_missing")
    return subject


@dataclass(frozen=True)
class AssertionRules:
    """Who the assertion must be addressed to, and how long it may live."""

    issuer: str
    token_endpoint: str
    max_lifetime: int = 3600  # Authlib's PrivateKeyJWT signs for one hour
    leeway: int = 60  # clock skew allowed on exp, nbf and iat


@dataclass(frozen=True)
class VerifiedAssertion:
    client_id: str
    jti: str
    expires_at: datetime


class AssertionVerifier:
    """Checks a client assertion's signature and claims; the single use of `jti` is the caller's.

    Parsed public keys are kept per client version and kid: loading a JWK costs more than
    verifying with it.
    """

    def __init__(self, rules: AssertionRules) -> None:
        self._rules = rules
        self._keys: dict[tuple[str, int, str | None], Any] = {}

    def verify(
        self, assertion: str, client: ClientRecord, now: datetime, endpoint: str | None = None
    ) -> VerifiedAssertion:
        """`endpoint`: the URL of the endpoint called, accepted as `aud` too (introspection
        and revocation clients such as Authlib's address their assertion to it)."""
        try:
            header = jwt.get_unverified_header(assertion)
        except jwt.PyJWTError:
            raise _fail("malformed_assertion") from None
        alg = header.get("alg")
        if alg not in ASSERTION_ALGORITHMS:
            raise _fail("assertion_algorithm_not_allowed")
        jwk = self._select(client, header.get("kid"), alg)
        key = self._key(client, jwk, alg)
        rules = self._rules
        try:
            claims: dict[str, Any] = jwt.decode(
                assertion,
                key,
                algorithms=[alg],
                audience=[rules.issuer, rules.token_endpoint, *([endpoint] if endpoint else [])],
                issuer=client.client_id,
                leeway=rules.leeway,
                # Times are judged below against this server's clock, not the library's.
                options={
                    "require": ["iss", "sub", "aud", "exp", "jti"],
                    "verify_exp": False,
                    "verify_nbf": False,
                    "verify_iat": False,
                },
            )
        except jwt.InvalidAudienceError:
            raise _fail("assertion_audience_mismatch") from None
        except jwt.InvalidIssuerError:
            raise _fail("assertion_issuer_mismatch") from None
        except jwt.InvalidSignatureError:
            raise _fail("assertion_signature_invalid") from None
        except jwt.PyJWTError:
            raise _fail("malformed_assertion") from None
        return self._checked(claims, client.client_id, now.timestamp())

    def _checked(self, claims: dict[str, Any], client_id: str, now: float) -> VerifiedAssertion:
        """RFC 7523 §3 items 2, 4, 6, 7, beyond what the JWT library checked."""
        rules = self._rules
        if claims["sub"] != client_id:
            raise _fail("assertion_subject_mismatch")
        exp, jti = claims["exp"], claims["jti"]
        if not isinstance(exp, int) or isinstance(exp, bool):
            raise _fail("malformed_assertion")
        if exp <= now - rules.leeway:  # §3 item 4: "MUST reject any JWT with an expired exp"
            raise _fail("assertion_expired")
        if exp - now > rules.max_lifetime + rules.leeway:
            raise _fail("assertion_lifetime_too_long")
        for name in ("iat", "nbf"):  # §3 items 5 and 6: not before these, with some skew
            value = claims.get(name)
            if value is None:
                continue
            if not isinstance(value, int | float) or isinstance(value, bool):
                raise _fail("malformed_assertion")
            if value > now + rules.leeway:
                raise _fail("assertion_not_yet_valid")
            if name == "iat" and exp - value > rules.max_lifetime + rules.leeway:
                raise _fail("assertion_lifetime_too_long")
        if not isinstance(jti, str) or not 0 < len(jti) <= MAX_JTI:
            raise _fail("assertion_jti_invalid")
        return VerifiedAssertion(client_id, jti, datetime.fromtimestamp(exp, UTC))

    @staticmethod
    def _select(client: ClientRecord, kid: Any, alg: str) -> dict[str, Any]:
        """`kid` selects the key; without one, the client's only key."""
        if kid is not None:
            found = [k for k in client.jwks if k.get("kid") == kid]
        else:
            found = list(client.jwks) if len(client.jwks) == 1 else []
        if not found:
            raise _fail("assertion_key_unknown")
        jwk = found[0]
        if alg not in ALGORITHMS_BY_KTY[jwk["kty"]] or jwk.get("alg", alg) != alg:
            raise _fail("assertion_algorithm_not_allowed")
        return jwk

    def _key(self, client: ClientRecord, jwk: dict[str, Any], alg: str) -> Any:
        cache_key = (client.client_id, client.version, f"{jwk.get('kid')}/{alg}")
        key = self._keys.get(cache_key)
        if key is None:
            try:
                key = jwt.PyJWK(jwk, algorithm=alg).key
            except jwt.PyJWTError:
                raise _fail("assertion_key_unusable") from None
            if len(self._keys) > 10_000:
                self._keys.clear()
            self._keys[cache_key] = key
        return key


def check_public_keys(keys: list[dict[str, Any]]) -> None:
    """Load every registered key once, so a point off its curve is refused at registration."""
    for index, jwk in enumerate(keys):
        alg = ALGORITHMS_BY_KTY[jwk["kty"]][0]
        try:
            jwt.PyJWK(jwk, algorithm=jwk.get("alg", alg))
        except (jwt.PyJWTError, ValueError) as exc:
            raise InvalidClientSettings(
                f"jwks.keys[{index}] is not a usable public key: {exc}"
            ) from None
