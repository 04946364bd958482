"""Scope strings, RFC 6749 §3.3.

scope       = scope-token *( SP scope-token )
scope-token = 1*( %x21 / %x23-5B / %x5D-7E )
"""

from __future__ import annotations

import re

_SCOPE_TOKEN = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+")


class ScopeSyntaxError(ValueError):
    """A scope string that does not follow RFC 6749 §3.3."""

    def __init__(self, value: str, bad_token: str) -> None:
        super().__init__(f"malformed scope {bad_token!r}")
        self.value = value
        self.bad_token = bad_token


def is_scope_token(token: str) -> bool:
    """True when `token` is one RFC 6749 §3.3 scope-token."""
    return _SCOPE_TOKEN.fullmatch(token) is not None


def parse_scope(value: str) -> frozenset[str]:
    """The set of scope-tokens in a space-delimited scope string.

    "The value of the scope parameter is expressed as a list of space-delimited,
    case-sensitive strings." Exactly one space separates tokens; anything else is malformed.
    """
    tokens = value.split(" ")
    for token in tokens:
        if not is_scope_token(token):
            raise ScopeSyntaxError(value, token)
    return frozenset(tokens)


def format_scope(tokens: frozenset[str] | set[str] | list[str] | tuple[str, ...]) -> str:
    """The canonical scope string: tokens sorted, one space apart."""
    return " ".join(sorted(tokens))
