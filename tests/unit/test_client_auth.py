"""Client credentials extraction, RFC 6749 §2.3.1."""

import base64
from urllib.parse import quote_plus

import pytest

from api.client_auth import extract_credentials
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
