"""How long a batch may wait to gather is a setting with bounds (api/settings.py)."""

from __future__ import annotations

import pytest

from api.settings import Settings, SettingsError


def test_a_batch_waits_at_most_a_millisecond_by_default() -> None:
    assert Settings.from_env({}).write_gather_wait == 0.001


def test_the_wait_is_read_from_the_environment_and_zero_turns_it_off() -> None:
    assert Settings.from_env({"KEYLEDGER_WRITE_GATHER_WAIT": "0"}).write_gather_wait == 0.0
    assert Settings.from_env({"KEYLEDGER_WRITE_GATHER_WAIT": "0.005"}).write_gather_wait == 0.005


@pytest.mark.parametrize("value", ["-0.001", "0.5", "soon"])
def test_a_wait_out_of_bounds_is_refused_naming_the_variable(value: str) -> None:
    with pytest.raises(SettingsError, match="KEYLEDGER_WRITE_GATHER_WAIT"):
        Settings.from_env({"KEYLEDGER_WRITE_GATHER_WAIT": value})
