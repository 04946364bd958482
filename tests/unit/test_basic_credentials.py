"""`client_secret_basic` (RFC 6749 §2.3.1, RFC 7617): what a malformed header is refused with.

A refusal is `invalid_client`: 401 with `WWW-Authenticate: Basic`, as the token endpoint's
error handler renders it; its `reason` goes to the audit stream and the detector.
"""

from __future__ import annotations

import base64
from types import SimpleNamespace
from typing import Any
from urllib.parse import quote_plus

import pytest
from hypothesis import given
from hypothesis import strategies as st

from api.http.errors import oauth_error_response
from api.http.oauth2.client_credentials import extract_credentials
from domain.oauth_errors import InvalidClient


def basic(raw: bytes | str, scheme: str = "Basic") -> str:
    raw = raw.encode() if isinstance(raw, str) else raw
    return f"{scheme} {base64.b64encode(raw).decode()}"


def refused(header: str) -> InvalidClient:
    """The refusal of an Authorization header, after checking how it goes on the wire."""
    with pytest.raises(InvalidClient) as caught:
        extract_credentials(header, None, None)
    request: Any = SimpleNamespace(url=SimpleNamespace(path="/oauth2/token"))
    response = oauth_error_response(request, caught.value)
    assert response.status_code == 401
    assert response.content == {
        "error": "invalid_client",
        "error_description": "client authentication failed",
    }
    assert response.headers["WWW-Authenticate"].startswith("Basic ")
    assert caught.value.used_basic
    return caught.value


@pytest.mark.parametrize(
    "header",
    [
        basic("id:secret", scheme="Bearer"),
        basic("id:secret", scheme="Digest"),
        "Basic",
        "Basic ",
        "Basic    ",
        "",
        basic("id:secret", scheme="Basic:"),
    ],
)
def test_another_scheme_or_no_credentials_is_a_malformed_authorization_header(
    header: str,
) -> None:
    assert refused(header).reason == "malformed_authorization_header"


@pytest.mark.parametrize("scheme", ["basic", "BASIC", "bAsIc"])
def test_the_scheme_name_is_case_insensitive(scheme: str) -> None:
    """RFC 7235 §2.1: "It uses a case-insensitive token as a means to identify the scheme"."""
    assert extract_credentials(basic("id:secret", scheme), None, None).client_id == "id"


def test_spaces_around_the_credentials_are_tolerated() -> None:
    encoded = base64.b64encode(b"id:secret").decode()
    credentials = extract_credentials(f"  Basic   {encoded}  ", None, None)
    assert (credentials.client_id, credentials.secret) == ("id", "secret")


@pytest.mark.parametrize(
    "encoded",
    [
        "aWQ6c2Vj*cmV0",  # base64("id:secret") with a '*' inside
        "aWQ6c2Vj cmV0",  # ... with a space inside
        "aWQ6c2VjcmV0!",
        "aWQ6c2VjcmV",  # truncated: bad padding
        "aWQ6c2VjcmV0-_",  # the URL-safe alphabet is not Basic's
    ],
)
def test_a_character_outside_base64_or_bad_padding_is_malformed_basic_credentials(
    encoded: str,
) -> None:
    assert refused(f"Basic {encoded}").reason == "malformed_basic_credentials"


@pytest.mark.parametrize(
    "raw",
    [b"no-colon", b":secret", b"id:", b":", b"\xff\xfe:secret", b"id:\xc3"],
    ids=["no-colon", "empty-id", "empty-secret", "both-empty", "not-utf8-id", "not-utf8-secret"],
)
def test_a_missing_part_or_undecodable_bytes_are_malformed_basic_credentials(raw: bytes) -> None:
    assert refused(basic(raw)).reason == "malformed_basic_credentials"


@pytest.mark.parametrize("raw", ["%FF:secret", "id:%FF", "id:se%C3cret", "%E2%82:secret"])
def test_percent_encoded_bytes_that_are_not_utf8_are_malformed_basic_credentials(raw: str) -> None:
    """§2.3.1's form-urlencoding decodes to UTF-8; a replacement character would hide it."""
    assert refused(basic(raw)).reason == "malformed_basic_credentials"


def test_a_secret_may_contain_colons_after_the_first() -> None:
    """RFC 7617 §2: the user-id cannot contain a colon; everything after the first is the
    password."""
    credentials = extract_credentials(basic("id:se:cr:et"), None, None)
    assert (credentials.client_id, credentials.secret) == ("id", "se:cr:et")


def test_basic_credentials_are_presented_by_client_secret_basic() -> None:
    credentials = extract_credentials(basic("id:secret"), None, None)
    assert (credentials.method, credentials.used_basic) == ("client_secret_basic", True)
    assert credentials.assertion is None


@given(st.text(min_size=1, max_size=30), st.text(min_size=1, max_size=30))
def test_any_form_encoded_id_and_secret_decode_back_to_themselves(
    client_id: str, secret: str
) -> None:
    header = basic(f"{quote_plus(client_id)}:{quote_plus(secret)}")
    credentials = extract_credentials(header, None, None)
    assert (credentials.client_id, credentials.secret) == (client_id, secret)
