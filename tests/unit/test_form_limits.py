"""The OAuth endpoints' form bodies: the 16 KiB cap however the body arrives, and the media type.

The token endpoint reads its own ASGI body; a body past 16 KiB is `invalid_request` with 413,
refused as soon as it grows past the cap, whether it comes in one chunk or many.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from api.http.oauth2.form import (
    MAX_FORM_BYTES,
    BadEncoding,
    BodyTooLarge,
    parse_form,
    read_limited,
    require_form_content_type,
    single,
)
from domain.oauth_errors import InvalidRequest

Receive = Callable[[], Awaitable[dict[str, Any]]]


def chunked(*chunks: bytes, then: str = "end") -> Receive:
    """An ASGI `receive` that sends `chunks` as one body; past the last, fails the test."""
    messages: list[dict[str, Any]] = [
        {"type": "http.request", "body": chunk, "more_body": i < len(chunks) - 1}
        for i, chunk in enumerate(chunks)
    ]
    if then == "disconnect":
        messages[-1]["more_body"] = True
        messages.append({"type": "http.disconnect"})

    async def receive() -> dict[str, Any]:
        assert messages, "read past the end of the body"
        return messages.pop(0)

    return receive


async def test_a_body_in_several_chunks_is_read_whole_and_in_order() -> None:
    assert await read_limited(chunked(b"grant_type=", b"client_", b"credentials")) == (
        b"grant_type=client_credentials"
    )


async def test_a_body_of_exactly_16_kib_in_chunks_is_read() -> None:
    half = b"x" * (MAX_FORM_BYTES // 2)
    assert MAX_FORM_BYTES == 16 * 1024
    assert await read_limited(chunked(half, half)) == half + half


async def test_chunks_that_together_pass_16_kib_are_refused_with_413() -> None:
    half = b"x" * (MAX_FORM_BYTES // 2)
    with pytest.raises(BodyTooLarge) as caught:
        await read_limited(chunked(half, half, b"x"))
    assert (caught.value.error, caught.value.status_code) == ("invalid_request", 413)
    assert caught.value.description == "the request body exceeds 16384 bytes"


async def test_the_body_is_refused_before_the_rest_of_it_is_read() -> None:
    receive = chunked(b"x" * (MAX_FORM_BYTES + 1), b"never read", b"nor this")
    with pytest.raises(BodyTooLarge):
        await read_limited(receive)
    assert await receive() == {"type": "http.request", "body": b"never read", "more_body": True}


async def test_a_smaller_limit_is_honoured() -> None:
    assert await read_limited(chunked(b"12", b"34"), limit=4) == b"1234"
    with pytest.raises(BodyTooLarge):
        await read_limited(chunked(b"12", b"345"), limit=4)


async def test_messages_without_a_body_or_more_body_key_are_an_empty_final_chunk() -> None:
    calls = iter([{"type": "http.request", "body": b"a=1", "more_body": True}, {"type": "x"}])

    async def receive() -> dict[str, Any]:
        return next(calls)

    assert await read_limited(receive) == b"a=1"


async def test_a_client_that_disconnects_mid_body_is_invalid_request() -> None:
    with pytest.raises(InvalidRequest) as caught:
        await read_limited(chunked(b"grant_type=", then="disconnect"))
    assert caught.value.description == "the client disconnected"
    assert not isinstance(caught.value, BodyTooLarge)


@given(st.lists(st.binary(max_size=3000), max_size=12))
async def test_any_chunking_of_a_body_reads_it_whole_or_refuses_it_past_the_cap(
    chunks: list[bytes],
) -> None:
    body = b"".join(chunks)
    receive = chunked(*chunks) if chunks else chunked(b"")
    if len(body) <= MAX_FORM_BYTES:
        assert await read_limited(receive) == body
    else:
        with pytest.raises(BodyTooLarge):
            await read_limited(receive)


@pytest.mark.parametrize(
    "content_type",
    [
        "application/x-www-form-urlencoded",
        "APPLICATION/X-WWW-FORM-URLENCODED",
        " application/x-www-form-urlencoded ; charset=UTF-8",
        "application/x-www-form-urlencoded;charset=utf-8;x=y",
    ],
)
def test_the_form_media_type_is_matched_case_insensitively_without_parameters(
    content_type: str,
) -> None:
    require_form_content_type(content_type)


@pytest.mark.parametrize(
    "content_type", [None, "", "application/json", "text/plain;application/x-www-form-urlencoded"]
)
def test_another_media_type_says_which_one_is_required(content_type: str | None) -> None:
    with pytest.raises(InvalidRequest) as caught:
        require_form_content_type(content_type)
    assert caught.value.description == (
        "the request body must be application/x-www-form-urlencoded"
    )


def test_an_invalid_utf8_body_says_so() -> None:
    with pytest.raises(BadEncoding) as caught:
        parse_form(b"scope=%ff")
    assert (caught.value.error, caught.value.description) == (
        "invalid_request",
        "the request body is not valid UTF-8 form data",
    )


def test_a_repeated_parameter_is_named() -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse_form(b"scope=a&grant_type=x&scope=b")
    assert caught.value.description == "parameter 'scope' is repeated"


def test_a_blank_parameter_hides_neither_the_ones_after_it_nor_a_later_value() -> None:
    assert parse_form(b"scope=&grant_type=client_credentials&scope=read") == {
        "grant_type": ["client_credentials"],
        "scope": ["read"],
    }


def test_form_values_are_percent_and_plus_decoded() -> None:
    assert parse_form(b"scope=read+write&resource=https%3A%2F%2Fa.example") == {
        "scope": ["read write"],
        "resource": ["https://a.example"],
    }


def test_single_gives_a_parameters_one_value_or_none() -> None:
    params = parse_form(b"grant_type=client_credentials")
    assert single(params, "grant_type") == "client_credentials"
    assert single(params, "scope") is None
    assert single({"scope": []}, "scope") is None
