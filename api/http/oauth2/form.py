"""`application/x-www-form-urlencoded` request bodies for the OAuth endpoints.

RFC 6749 §3.2: "Parameters sent without a value MUST be treated as if they were omitted
from the request ... Request and response parameters MUST NOT be included more than once."
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

from domain.oauth_errors import InvalidRequest

FORM_MEDIA_TYPE = "application/x-www-form-urlencoded"
MAX_FORM_BYTES = 16 * 1024


class BodyTooLarge(InvalidRequest):
    """The body exceeds what an OAuth request can need."""

    status_code = 413
    limit = MAX_FORM_BYTES
    default_description = f"the request body exceeds {MAX_FORM_BYTES} bytes"


class BadEncoding(InvalidRequest):
    """The body is not valid UTF-8 (or percent-encodes bytes that are not)."""


def require_form_content_type(content_type: str | None) -> None:
    """RFC 6749 §4.4.2: the request uses the form-urlencoded format."""
    media_type = (content_type or "").split(";", 1)[0].strip().lower()
    if media_type != FORM_MEDIA_TYPE:
        raise InvalidRequest(f"the request body must be {FORM_MEDIA_TYPE}")


def parse_form(body: bytes, repeatable: frozenset[str] = frozenset()) -> dict[str, list[str]]:
    """Parameters by name; a name outside `repeatable` may occur once. Blank values are dropped."""
    try:
        text = body.decode("utf-8")
        pairs = parse_qsl(text, keep_blank_values=True, encoding="utf-8", errors="strict")
    except (UnicodeDecodeError, ValueError):
        raise BadEncoding("the request body is not valid UTF-8 form data") from None
    params: dict[str, list[str]] = {}
    for name, value in pairs:
        if value == "":
            continue
        values = params.setdefault(name, [])
        if values and name not in repeatable:
            raise InvalidRequest(f"parameter {name!r} is repeated")
        values.append(value)
    return params


def single(params: dict[str, list[str]], name: str) -> str | None:
    values = params.get(name)
    return values[0] if values else None


async def read_limited(receive: Any, limit: int = MAX_FORM_BYTES) -> bytes:
    """The ASGI request body, refused as soon as it grows past `limit`."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise InvalidRequest("the client disconnected")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)
