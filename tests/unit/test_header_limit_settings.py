"""The request-head limits are settings with sensible bounds."""

from __future__ import annotations

import pytest

from api.settings import Settings, SettingsError


def test_the_defaults_are_16_kib_of_head_in_at_most_100_fields() -> None:
    settings = Settings.from_env({})
    assert (settings.max_header_bytes, settings.max_headers) == (16_384, 100)


def test_the_limits_are_read_from_the_environment() -> None:
    settings = Settings.from_env(
        {"KEYLEDGER_MAX_HEADER_BYTES": "32768", "KEYLEDGER_MAX_HEADERS": "50"}
    )
    assert (settings.max_header_bytes, settings.max_headers) == (32_768, 50)


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("KEYLEDGER_MAX_HEADER_BYTES", "100"),
        ("KEYLEDGER_MAX_HEADER_BYTES", "67108864"),
        ("KEYLEDGER_MAX_HEADERS", "0"),
        ("KEYLEDGER_MAX_HEADERS", "100000"),
        ("KEYLEDGER_MAX_HEADERS", "many"),
    ],
)
def test_limits_out_of_bounds_are_refused_naming_the_variable(variable: str, value: str) -> None:
    with pytest.raises(SettingsError, match=variable):
        Settings.from_env({variable: value})
