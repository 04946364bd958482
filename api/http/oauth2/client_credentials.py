"""Client credentials in a token request, RFC 6749 §2.3.1.

`client_secret_basic`: "The client identifier is encoded using the
application/x-www-form-urlencoded encoding algorithm ... and the encoded value is used as
the username; the client password is encoded using the same algorithm and used as the
password." `client_secret_post`: `client_id` and `client_secret` in the body.
"The client MUST NOT use more than one authentication method in each request."

`private_key_jwt` (RFC 7521 §4.2, RFC 7523 §2.2): `client_assertion_type` and
`client_assertion` in the body; `client_id` is optional and, when sent, names the same client.
"""

from __future__ import annotations

import base64
import binascii
from urllib.parse import unquote_plus

from adapters.client_assertion import JWT_BEARER, assertion_subject
from api.usecases.credentials import Credentials
from domain.client import PRIVATE_KEY_JWT
from domain.oauth_errors import InvalidClient, InvalidRequest


def _basic(header: str) -> Credentials:
    scheme, _, encoded = header.strip().partition(" ")
    if scheme.lower() != "basic" or not encoded.strip():
        raise InvalidClient(reason="malformed_authorization_header", used_basic=True)
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise InvalidClient(reason="malformed_basic_credentials", used_basic=True) from None
    raw_id, sep, raw_secret = decoded.partition(":")
    if not sep:
        raise InvalidClient(reason="malformed_basic_credentials", used_basic=True)
    try:
        client_id = unquote_plus(raw_id, errors="strict")
        secret = unquote_plus(raw_secret, errors="strict")
    except UnicodeDecodeError:
        raise InvalidClient(reason="malformed_basic_credentials", used_basic=True) from None
    if not client_id or not secret:
        raise InvalidClient(reason="malformed_basic_credentials", used_basic=True)
    return Credentials(client_id, secret, "client_secret_basic")


def _assertion(
    assertion_type: str | None, assertion: str, body_client_id: str | None
) -> Credentials:
    if assertion_type is None:
        raise InvalidRequest("client_assertion_type is required with client_assertion")
    if assertion_type != JWT_BEARER:
        raise InvalidClient(reason="unsupported_assertion_type")
    subject = assertion_subject(assertion)
    if body_client_id is not None and body_client_id != subject:
        raise InvalidClient(reason="assertion_subject_mismatch")
    return Credentials(subject, "", PRIVATE_KEY_JWT, assertion)


def extract_credentials(
    authorization: str | None,
    body_client_id: str | None,
    body_secret: str | None,
    assertion_type: str | None = None,
    assertion: str | None = None,
) -> Credentials:
    """The one set of credentials the request presents, or the RFC error."""
    if assertion is not None:
        if authorization is not None or body_secret is not None:
            raise InvalidRequest("use one client authentication method, not two")
        return _assertion(assertion_type, assertion, body_client_id)
    if assertion_type is not None:
        raise InvalidRequest("client_assertion is required with client_assertion_type")
    if authorization is not None:
        if body_secret is not None:
            raise InvalidRequest("use one client authentication method, not two")
        credentials = _basic(authorization)
        if body_client_id is not None and body_client_id != credentials.client_id:
            raise InvalidRequest("client_id in the body differs from the Authorization header")
        return credentials
    if body_client_id is None or body_secret is None:
        raise InvalidClient(reason="no_client_authentication")
    return Credentials(body_client_id, body_secret, "client_secret_post")
