"""Client credentials extraction, RFC 6749 §2.3.1."""

import base64
import json
from urllib.parse import quote_plus

import pytest

from api.http.oauth2.client_credentials import extract_credentials
from api.usecases.credentials import Credentials
from domain.oauth_errors import InvalidClient, InvalidRequest


def basic(client_id: str, secret: str) -> str:
    raw = f"{quote_plus(client_id)}:{quote_plus(secret)}".encode()
    return "Basic " + base64.b64encode(raw).decode()


def test_basic_credentials_are_form_url_decoded() -> None:
    creds = extract_credentials(basic("a:b c", "s%e:c+r"), None, None)
    assert (creds.client_id, creds.secret, creds.method) == (
        "a:b c",
        "s%e:c+r",
        "client_secret_basic",
    )


def test_body_credentials_are_client_secret_post() -> None:
    creds = extract_credentials(None, "id", "secret")
    assert (creds.client_id, creds.secret, creds.method) == ("id", "secret", "client_secret_post")


def test_two_authentication_methods_at_once_are_invalid_request() -> None:
    with pytest.raises(InvalidRequest):
        extract_credentials(basic("id", "s"), None, "s")


def test_a_body_client_id_that_differs_from_basic_is_invalid_request() -> None:
    with pytest.raises(InvalidRequest):
        extract_credentials(basic("id", "s"), "other", None)


@pytest.mark.parametrize(
    "header",
    [
        "Basic",
        "Basic !!!notbase64",
        "Bearer abc",
        "Basic " + base64.b64encode(b"nocolon").decode(),
        "Basic " + base64.b64encode(b"\xff\xfe:x").decode(),
        "Basic " + base64.b64encode(b":secret").decode(),
    ],
)
def test_a_malformed_authorization_header_is_invalid_client(header: str) -> None:
    with pytest.raises(InvalidClient) as caught:
        extract_credentials(header, None, None)
    assert caught.value.used_basic


def test_no_credentials_at_all_is_invalid_client() -> None:
    with pytest.raises(InvalidClient):
        extract_credentials(None, "id", None)


def test_credentials_never_show_the_secret_in_their_repr() -> None:
    assert "hunter2" not in repr(extract_credentials(None, "id", "hunter2"))


# One method per request, and the private_key_jwt half (RFC 7521 §4.2, RFC 7523 §2.2).

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def unsigned_assertion(payload: dict[str, object]) -> str:
    """Only the subject is read here; the signature is the verifier's to check."""
    encoded = base64.urlsafe_b64encode(json.dumps(payload).encode()).rstrip(b"=").decode()
    return f"eyJhbGciOiJFUzI1NiJ9.{encoded}.c2ln"


ASSERTION = unsigned_assertion({"sub": "signer", "iss": "signer"})


def invalid_request(*args: str | None) -> str:
    """The `error_description` the refusal of these arguments sends on the wire."""
    with pytest.raises(InvalidRequest) as caught:
        extract_credentials(*args)
    assert (caught.value.error, caught.value.status_code) == ("invalid_request", 400)
    return caught.value.description


def invalid_client(*args: str | None) -> str:
    with pytest.raises(InvalidClient) as caught:
        extract_credentials(*args)
    assert (caught.value.error, caught.value.status_code) == ("invalid_client", 401)
    return caught.value.reason


def test_an_assertion_of_the_jwt_bearer_type_presents_its_subject_by_private_key_jwt() -> None:
    creds = extract_credentials(None, None, None, ASSERTION_TYPE, ASSERTION)
    assert creds == Credentials("signer", "", "private_key_jwt", ASSERTION)
    assert not creds.used_basic


def test_a_body_client_id_naming_the_assertions_subject_is_accepted() -> None:
    creds = extract_credentials(None, "signer", None, ASSERTION_TYPE, ASSERTION)
    assert creds.client_id == "signer"


def test_a_body_client_id_naming_another_client_than_the_assertion_is_refused() -> None:
    reason = invalid_client(None, "other", None, ASSERTION_TYPE, ASSERTION)
    assert reason == "assertion_subject_mismatch"


def test_an_assertion_type_other_than_jwt_bearer_is_refused() -> None:
    saml = "urn:ietf:params:oauth:client-assertion-type:saml2-bearer"
    assert invalid_client(None, None, None, saml, ASSERTION) == "unsupported_assertion_type"


@pytest.mark.parametrize(
    ("assertion", "reason"),
    [
        ("abc", "malformed_assertion"),
        ("a.b", "malformed_assertion"),
        (unsigned_assertion({"sub": ""}), "assertion_subject_missing"),
        (unsigned_assertion({"sub": 42}), "assertion_subject_missing"),
    ],
)
def test_an_unreadable_assertion_is_invalid_client_not_a_server_error(
    assertion: str, reason: str
) -> None:
    assert invalid_client(None, None, None, ASSERTION_TYPE, assertion) == reason


def test_an_assertion_without_its_type_is_invalid_request() -> None:
    assert invalid_request(None, None, None, None, ASSERTION) == (
        "client_assertion_type is required with client_assertion"
    )


def test_an_assertion_type_without_an_assertion_is_invalid_request() -> None:
    assert invalid_request(None, None, None, ASSERTION_TYPE, None) == (
        "client_assertion is required with client_assertion_type"
    )


@pytest.mark.parametrize(
    ("authorization", "secret"), [(basic("signer", "s"), None), (None, "s")], ids=["basic", "post"]
)
def test_an_assertion_beside_a_secret_is_two_methods_and_invalid_request(
    authorization: str | None, secret: str | None
) -> None:
    description = invalid_request(authorization, None, secret, ASSERTION_TYPE, ASSERTION)
    assert description == "use one client authentication method, not two"


def test_basic_beside_a_body_secret_is_two_methods_and_invalid_request() -> None:
    description = invalid_request(basic("id", "s"), None, "s")
    assert description == "use one client authentication method, not two"


def test_a_body_client_id_that_differs_from_basic_says_so() -> None:
    description = invalid_request(basic("id", "s"), "other", None)
    assert description == "client_id in the body differs from the Authorization header"


def test_a_body_client_id_that_repeats_basics_is_accepted() -> None:
    creds = extract_credentials(basic("id", "s"), "id", None)
    assert (creds.client_id, creds.method) == ("id", "client_secret_basic")


@pytest.mark.parametrize(("client_id", "secret"), [(None, None), ("id", None), (None, "s")])
def test_no_complete_credentials_are_refused_as_no_client_authentication(
    client_id: str | None, secret: str | None
) -> None:
    assert invalid_client(None, client_id, secret) == "no_client_authentication"


def test_body_credentials_are_not_basic() -> None:
    assert not extract_credentials(None, "id", "secret").used_basic
