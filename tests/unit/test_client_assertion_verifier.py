"""The client assertion verifier, RFC 7523 §3: each check, and the reason its refusal carries.

Every refusal is `invalid_client` (401, one fixed description); its `reason` names the check
that failed, for the audit stream and the detector.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters.client_assertion import (
    MAX_ASSERTION,
    AssertionRules,
    AssertionVerifier,
    VerifiedAssertion,
    assertion_subject,
    check_public_keys,
)
from domain.client import PRIVATE_KEY_JWT
from domain.client_record import ClientRecord
from domain.client_settings import InvalidClientSettings
from domain.oauth_errors import InvalidClient
from tests.assertions import ISSUER, TOKEN_ENDPOINT, ClientKey, client_key, sign

NOW = datetime(2040, 12, 1, 12, 0, tzinfo=UTC)  # years from the machine's clock, on purpose
T = int(NOW.timestamp())
CLIENT = "c-signer"
INTROSPECTION = f"{ISSUER}/oauth2/introspect"
EC, EC_2, ED = client_key("ES256"), client_key("ES256"), client_key("EdDSA")
RSA = client_key("RS256")
PS = ClientKey("PS256", RSA.private_key, RSA.kid)  # the same RSA key, signing PS256


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def keyed(*jwks: dict[str, Any], client_id: str = CLIENT, version: int = 1) -> ClientRecord:
    return ClientRecord(
        client_id=client_id,
        name="signer",
        status="active",
        allowed_scopes=frozenset({"a"}),
        default_scopes=frozenset({"a"}),
        token_ttl=300,
        audiences=(),
        secrets=(),
        version=version,
        registered_at=NOW,
        updated_at=NOW,
        auth_method=PRIVATE_KEY_JWT,
        jwks=jwks or (EC.public_jwk,),
    )


def claims(**changes: Any) -> dict[str, Any]:
    """A valid assertion's claims at NOW; a change to None removes the claim."""
    base = {"iss": CLIENT, "sub": CLIENT, "aud": TOKEN_ENDPOINT, "iat": T, "exp": T + 300}
    merged = {**base, "jti": "jti-1", **changes}
    return {name: value for name, value in merged.items() if value is not None}


def verify(
    assertion: str,
    client: ClientRecord | None = None,
    endpoint: str | None = None,
    now: datetime = NOW,
) -> VerifiedAssertion:
    rules = AssertionRules(issuer=ISSUER, token_endpoint=TOKEN_ENDPOINT)
    return AssertionVerifier(rules).verify(assertion, client or keyed(), now, endpoint)


def refusal(assertion: str, client: ClientRecord | None = None, endpoint: str | None = None) -> str:
    """The reason `verify` refuses the assertion with, after checking the wire shape."""
    with pytest.raises(InvalidClient) as caught:
        verify(assertion, client, endpoint)
    refused = caught.value
    assert (refused.error, refused.status_code) == ("invalid_client", 401)
    assert refused.description == "client authentication failed"
    return refused.reason


def subject_refusal(assertion: str) -> str:
    with pytest.raises(InvalidClient) as caught:
        assertion_subject(assertion)
    return caught.value.reason


# The unverified subject: which client the request is about (RFC 7523 §3 item 2).


@given(st.text(min_size=1, max_size=60))
def test_the_unverified_subject_names_the_client_that_claims_to_have_signed(sub: str) -> None:
    assertion = f"{b64(b'{}')}.{b64(json.dumps({'sub': sub}).encode())}.sig"
    assert assertion_subject(assertion) == sub


@pytest.mark.parametrize("assertion", ["", "abc", "a.b", "a.b.c.d", "e30.e30.e30.e30"])
def test_an_assertion_that_is_not_three_segments_is_malformed_not_a_server_error(
    assertion: str,
) -> None:
    assert subject_refusal(assertion) == "malformed_assertion"


@pytest.mark.parametrize(
    "payload", ["!!!", "e30x", b64(b"\xff\xfe"), b64(b"not json"), b64(b"[1]"), b64(b'"c"')]
)
def test_a_payload_that_is_not_a_base64url_json_object_is_malformed(payload: str) -> None:
    assert subject_refusal(f"e30.{payload}.sig") == "malformed_assertion"


@pytest.mark.parametrize("payload", [{}, {"sub": ""}, {"sub": 7}, {"sub": None}, {"sub": ["c"]}])
def test_a_subject_that_is_missing_empty_or_not_a_string_is_refused(
    payload: dict[str, Any],
) -> None:
    assert subject_refusal(f"e30.{b64(json.dumps(payload).encode())}.sig") == (
        "assertion_subject_missing"
    )


def test_an_assertion_of_8_kib_is_read_and_one_character_more_is_malformed() -> None:
    head = f"e30.{b64(json.dumps({'sub': CLIENT}).encode())}."
    longest = head + "s" * (MAX_ASSERTION - len(head))
    assert assertion_subject(longest) == CLIENT
    assert subject_refusal(longest + "s") == "malformed_assertion"


# Verification: signature, header, key selection.


@pytest.mark.parametrize(
    ("key", "jwk"),
    [(EC, EC.public_jwk), (RSA, RSA.public_jwk), (PS, RSA.public_jwk), (ED, ED.public_jwk)],
    ids=["ES256", "RS256", "PS256", "EdDSA"],
)
def test_a_valid_assertion_verifies_to_its_client_jti_and_expiry(
    key: ClientKey, jwk: dict[str, Any]
) -> None:
    verified = verify(sign(key, claims()), keyed(jwk))
    assert verified == VerifiedAssertion(CLIENT, "jti-1", NOW + timedelta(seconds=300))


@pytest.mark.parametrize("assertion", ["abc", "a.b", "a.b.c", "!!.e30.sig"])
def test_an_assertion_whose_header_cannot_be_read_is_malformed(assertion: str) -> None:
    assert refusal(assertion) == "malformed_assertion"


def test_a_signature_by_another_key_under_the_clients_kid_is_refused() -> None:
    forged = sign(EC_2, claims(), headers={"kid": EC.kid})
    assert refusal(forged) == "assertion_signature_invalid"


@pytest.mark.parametrize("alg", ["none", "HS256", "RS384", "ES384", "PS512"])
def test_an_algorithm_outside_rs256_ps256_es256_and_eddsa_is_refused(alg: str) -> None:
    header = b64(json.dumps({"alg": alg, "kid": EC.kid}).encode())
    _, payload, signature = sign(EC, claims()).split(".")
    assert refusal(f"{header}.{payload}.{signature}") == "assertion_algorithm_not_allowed"


def test_an_algorithm_for_another_key_type_is_refused() -> None:
    eddsa_under_ec_kid = sign(ED, claims(), headers={"kid": EC.kid})
    assert refusal(eddsa_under_ec_kid) == "assertion_algorithm_not_allowed"


def test_a_key_pinned_to_rs256_refuses_a_ps256_assertion() -> None:
    pinned = keyed({**RSA.public_jwk, "alg": "RS256"})
    assert verify(sign(RSA, claims()), pinned).client_id == CLIENT
    assert refusal(sign(PS, claims()), pinned) == "assertion_algorithm_not_allowed"


def test_an_unknown_kid_is_refused_as_an_unknown_key() -> None:
    assert refusal(sign(EC, claims(), headers={"kid": "other"})) == "assertion_key_unknown"


def test_without_a_kid_the_clients_only_key_verifies() -> None:
    assert verify(sign(EC, claims(), headers={})).client_id == CLIENT


def test_without_a_kid_a_client_with_several_keys_is_refused_as_an_unknown_key() -> None:
    client = keyed(EC.public_jwk, EC_2.public_jwk)
    assert refusal(sign(EC, claims(), headers={}), client) == "assertion_key_unknown"


def test_the_kid_selects_the_clients_second_key() -> None:
    client = keyed(EC.public_jwk, ED.public_jwk)
    assert verify(sign(ED, claims()), client).jti == "jti-1"


def test_a_registered_key_that_cannot_be_loaded_is_refused_as_unusable() -> None:
    off_curve = {**EC.public_jwk, "y": EC.public_jwk["x"]}
    assert refusal(sign(EC, claims()), keyed(off_curve)) == "assertion_key_unusable"


def test_keys_replaced_under_the_same_kid_verify_with_the_new_key_only() -> None:
    verifier = AssertionVerifier(AssertionRules(issuer=ISSUER, token_endpoint=TOKEN_ENDPOINT))
    old, new = keyed(EC.public_jwk, version=1), keyed({**EC_2.public_jwk, "kid": EC.kid}, version=2)
    assert verifier.verify(sign(EC, claims()), old, NOW).jti == "jti-1"
    assert verifier.verify(sign(EC_2, claims(), headers={"kid": EC.kid}), new, NOW)
    with pytest.raises(InvalidClient) as caught:
        verifier.verify(sign(EC, claims()), new, NOW)
    assert caught.value.reason == "assertion_signature_invalid"


def test_each_of_a_clients_keys_verifies_its_own_assertions_in_turn() -> None:
    verifier = AssertionVerifier(AssertionRules(issuer=ISSUER, token_endpoint=TOKEN_ENDPOINT))
    client = keyed(EC.public_jwk, EC_2.public_jwk)
    for key in (EC, EC_2, EC):
        assert verifier.verify(sign(key, claims()), client, NOW).jti == "jti-1"


def test_two_clients_with_the_same_kid_each_verify_with_their_own_key() -> None:
    verifier = AssertionVerifier(AssertionRules(issuer=ISSUER, token_endpoint=TOKEN_ENDPOINT))
    first = keyed({**EC.public_jwk, "kid": "k"}, client_id="first")
    second = keyed({**EC_2.public_jwk, "kid": "k"}, client_id="second")
    by_first = sign(EC, claims(iss="first", sub="first"), headers={"kid": "k"})
    by_second = sign(EC_2, claims(iss="second", sub="second"), headers={"kid": "k"})
    assert verifier.verify(by_first, first, NOW).client_id == "first"
    assert verifier.verify(by_second, second, NOW).client_id == "second"


# Claims: who it is from and to (RFC 7523 §3 items 1-3).


@pytest.mark.parametrize("audience", [ISSUER, TOKEN_ENDPOINT, [TOKEN_ENDPOINT, "https://x"]])
def test_an_assertion_addressed_to_the_issuer_or_the_token_endpoint_is_accepted(
    audience: Any,
) -> None:
    assert verify(sign(EC, claims(aud=audience))).client_id == CLIENT


def test_an_assertion_addressed_to_the_endpoint_called_is_accepted_there_only() -> None:
    to_introspection = sign(EC, claims(aud=INTROSPECTION))
    assert verify(to_introspection, endpoint=INTROSPECTION).client_id == CLIENT
    assert refusal(to_introspection) == "assertion_audience_mismatch"


@pytest.mark.parametrize(
    "audience", ["https://elsewhere.example", f"{TOKEN_ENDPOINT}/", ISSUER.upper()]
)
def test_an_assertion_addressed_elsewhere_is_refused_as_audience_mismatch(audience: str) -> None:
    assert refusal(sign(EC, claims(aud=audience))) == "assertion_audience_mismatch"


def test_an_issuer_other_than_the_client_is_refused_as_issuer_mismatch() -> None:
    assert refusal(sign(EC, claims(iss="someone-else"))) == "assertion_issuer_mismatch"


def test_a_subject_other_than_the_client_is_refused_as_subject_mismatch() -> None:
    assert refusal(sign(EC, claims(sub="someone-else"))) == "assertion_subject_mismatch"


@pytest.mark.parametrize("claim", ["iss", "sub", "aud", "exp", "jti"])
def test_an_assertion_without_a_required_claim_is_malformed(claim: str) -> None:
    assert refusal(sign(EC, claims(**{claim: None}))) == "malformed_assertion"


# Claims: times (RFC 7523 §3 items 4-6), judged against NOW with 60 s of leeway.


@pytest.mark.parametrize("exp", [str(T + 300), T + 300.5, True])
def test_an_exp_that_is_not_an_integer_is_malformed(exp: Any) -> None:
    assert refusal(sign(EC, claims(exp=exp))) == "malformed_assertion"


@pytest.mark.parametrize("clock", [datetime(2001, 1, 1, tzinfo=UTC), NOW], ids=["past", "future"])
def test_times_are_judged_by_the_servers_clock_not_the_machines(clock: datetime) -> None:
    at = int(clock.timestamp())
    valid_then = claims(iat=at - 10, nbf=at - 10, exp=at + 300)
    assert verify(sign(EC, valid_then), now=clock).expires_at == clock + timedelta(seconds=300)


def test_an_assertion_expired_by_more_than_the_leeway_is_refused() -> None:
    assert verify(sign(EC, claims(iat=None, exp=T - 59))).client_id == CLIENT
    assert refusal(sign(EC, claims(iat=None, exp=T - 60))) == "assertion_expired"


def test_an_assertion_that_expires_30_seconds_from_now_is_accepted() -> None:
    assert verify(sign(EC, claims(exp=T + 30))).expires_at == NOW + timedelta(seconds=30)


def test_an_exp_further_ahead_than_the_lifetime_cap_is_refused() -> None:
    assert verify(sign(EC, claims(iat=None, exp=T + 3660))).client_id == CLIENT
    assert refusal(sign(EC, claims(iat=None, exp=T + 3661))) == "assertion_lifetime_too_long"


def test_the_lifetime_from_iat_to_exp_is_capped_too() -> None:
    assert verify(sign(EC, claims(iat=T - 1000, exp=T + 2660))).client_id == CLIENT
    too_long = sign(EC, claims(iat=T - 1000, exp=T + 2661))
    assert refusal(too_long) == "assertion_lifetime_too_long"


@pytest.mark.parametrize("claim", ["iat", "nbf"])
def test_an_iat_or_nbf_beyond_the_leeway_is_not_yet_valid(claim: str) -> None:
    without_iat = {"iat": None}
    assert verify(sign(EC, claims(**{**without_iat, claim: T + 60}))).client_id == CLIENT
    later = sign(EC, claims(**{**without_iat, claim: T + 61}))
    assert refusal(later) == "assertion_not_yet_valid"


def test_an_nbf_in_the_future_is_refused_even_with_an_iat_now() -> None:
    assert refusal(sign(EC, claims(nbf=T + 120))) == "assertion_not_yet_valid"


@pytest.mark.parametrize("claim", ["iat", "nbf"])
@pytest.mark.parametrize("value", [str(T), True, [T]])
def test_an_iat_or_nbf_that_is_not_a_number_is_malformed(claim: str, value: Any) -> None:
    assert refusal(sign(EC, claims(**{claim: value}))) == "malformed_assertion"


def test_fractional_iat_and_nbf_are_numbers_like_any_other() -> None:
    assert verify(sign(EC, claims(iat=T - 0.5, nbf=T + 0.5))).client_id == CLIENT


@pytest.mark.parametrize("jti", ["", "j" * 257])
def test_a_jti_of_no_characters_or_more_than_256_is_refused(jti: str) -> None:
    assert refusal(sign(EC, claims(jti=jti))) == "assertion_jti_invalid"


@pytest.mark.parametrize("jti", ["j", "j" * 256])
def test_a_jti_of_1_to_256_characters_is_accepted(jti: str) -> None:
    assert verify(sign(EC, claims(jti=jti))).jti == jti


# Registration: every registered key must load.


@pytest.mark.parametrize("key", [EC, RSA, ED], ids=["EC", "RSA", "OKP"])
def test_a_usable_public_key_of_each_type_passes_the_load_check(key: ClientKey) -> None:
    check_public_keys([key.public_jwk, {**RSA.public_jwk, "alg": "PS256"}])


def test_a_key_that_cannot_be_loaded_is_named_by_its_position_in_the_set() -> None:
    off_curve = {**EC_2.public_jwk, "y": EC_2.public_jwk["x"]}
    with pytest.raises(InvalidClientSettings, match=r"^jwks\.keys\[1\] is not a usable public key"):
        check_public_keys([EC.public_jwk, off_curve])


def test_pyjwt_still_refuses_a_key_for_an_algorithm_of_another_family() -> None:
    """Why the verifier checks the key type itself: a mismatch would otherwise be a 500."""
    with pytest.raises(jwt.PyJWTError):
        jwt.PyJWK(EC.public_jwk, algorithm="EdDSA")
