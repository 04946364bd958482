"""Issue 17: the retention settings read from the environment, and a bad one is refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from api.settings import Settings, SettingsError


def test_retention_is_400_days_and_archives_go_under_var_by_default() -> None:
    settings = Settings.from_env({})
    assert (settings.token_event_retention, settings.archive_dir) == (400, Path("var/archives"))


def test_retention_and_the_archive_directory_come_from_the_environment() -> None:
    settings = Settings.from_env(
        {"KEYLEDGER_TOKEN_EVENT_RETENTION": "90", "KEYLEDGER_ARCHIVE_DIR": "/mnt/archives"}
    )
    assert (settings.token_event_retention, settings.archive_dir) == (90, Path("/mnt/archives"))


@pytest.mark.parametrize("days", ["0", "-5", "36501", "a year"])
def test_a_retention_outside_1_to_36500_days_is_refused(days: str) -> None:
    with pytest.raises(SettingsError, match="KEYLEDGER_TOKEN_EVENT_RETENTION"):
        Settings.from_env({"KEYLEDGER_TOKEN_EVENT_RETENTION": days})
