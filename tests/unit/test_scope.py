"""RFC 6749 §3.3 scope syntax."""

import pytest

from domain.scope import ScopeSyntaxError, format_scope, parse_scope


def test_a_space_delimited_scope_string_is_a_set_of_tokens() -> None:
    assert parse_scope("invoices:read invoices:write") == {"invoices:read", "invoices:write"}


def test_scope_tokens_are_case_sensitive() -> None:
    assert parse_scope("Read read") == {"Read", "read"}


@pytest.mark.parametrize(
    "value",
    ["", " read", "read ", "read  write", "read\twrite", 'say"hi"', "back\\slash", "caf\u00e9"],
)
def test_malformed_scope_strings_are_rejected(value: str) -> None:
    with pytest.raises(ScopeSyntaxError):
        parse_scope(value)


def test_the_canonical_form_is_sorted_and_single_spaced() -> None:
    assert format_scope({"b", "a", "c"}) == "a b c"
