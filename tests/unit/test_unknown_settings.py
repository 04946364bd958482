"""A misspelled setting is an error naming the closest one, never silently ignored (issue 15)."""

from __future__ import annotations

import pytest

from api.settings import Settings, SettingsError


def test_a_misspelled_setting_names_the_closest_known_one() -> None:
    with pytest.raises(
        SettingsError, match="KEYLEDGER_DATABSE_URL; did you mean KEYLEDGER_DATABASE_URL"
    ):
        Settings.from_env({"KEYLEDGER_DATABSE_URL": "postgresql://db/keyledger"})


def test_an_unknown_setting_with_nothing_close_is_still_an_error() -> None:
    with pytest.raises(SettingsError, match=r"^unknown setting KEYLEDGER_XYZZY_QUUX$"):
        Settings.from_env({"KEYLEDGER_XYZZY_QUUX": "1"})


@pytest.mark.parametrize("name", ["KEYLEDGER_URL", "KEYLEDGER_TEST_PG_PORT", "OTHER_DATABSE_URL"])
def test_the_examples_and_tests_variables_and_other_families_pass(name: str) -> None:
    assert Settings.from_env({name: "1"}) == Settings()
