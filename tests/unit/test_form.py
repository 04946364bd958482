"""Form bodies for the OAuth endpoints (RFC 6749 §3.2)."""

import pytest

from api.http.oauth2.form import BadEncoding, parse_form, require_form_content_type
from domain.oauth_errors import InvalidRequest


def test_parameters_sent_without_a_value_are_treated_as_omitted() -> None:
    assert parse_form(b"grant_type=client_credentials&scope=") == {
        "grant_type": ["client_credentials"]
    }


def test_a_repeated_parameter_is_invalid_request() -> None:
    with pytest.raises(InvalidRequest, match="repeated"):
        parse_form(b"scope=a&scope=b")


def test_repeatable_parameters_keep_every_value() -> None:
    assert parse_form(b"resource=a&resource=b", frozenset({"resource"})) == {"resource": ["a", "b"]}


@pytest.mark.parametrize("body", [b"scope=\xff", b"scope=%ff%fe"])
def test_invalid_utf8_is_rejected(body: bytes) -> None:
    with pytest.raises(BadEncoding):
        parse_form(body)


@pytest.mark.parametrize(
    "content_type", [None, "application/json", "text/plain", "multipart/form-data"]
)
def test_only_form_urlencoded_bodies_are_accepted(content_type: str | None) -> None:
    with pytest.raises(InvalidRequest):
        require_form_content_type(content_type)


def test_a_charset_parameter_on_the_content_type_is_fine() -> None:
    require_form_content_type("application/x-www-form-urlencoded; charset=UTF-8")
