"""Where `serve` runs its background jobs: KEYLEDGER_BACKGROUND_JOBS and the worker count."""

from __future__ import annotations

import pytest

from api.settings import Settings, SettingsError

POSTGRES = "postgresql://keyledger@db/keyledger"


def _settings(**env: str) -> Settings:
    return Settings.from_env({"KEYLEDGER_DATABASE_URL": "sqlite:///k.db", **env})


def test_by_default_a_single_postgresql_worker_leaves_them_to_a_process_of_their_own() -> None:
    assert _settings(KEYLEDGER_DATABASE_URL=POSTGRES).jobs_in_own_process


def test_by_default_several_workers_run_them_as_threads() -> None:
    settings = _settings(KEYLEDGER_DATABASE_URL=POSTGRES, KEYLEDGER_WORKERS="2")
    assert not settings.jobs_in_own_process


def test_by_default_sqlite_runs_them_as_threads_so_only_one_process_writes_its_file() -> None:
    assert not _settings().jobs_in_own_process


@pytest.mark.parametrize(
    ("place", "workers", "own"), [("process", "2", True), ("workers", "1", False)]
)
def test_an_explicit_place_holds_whatever_the_worker_count(
    place: str, workers: str, own: bool
) -> None:
    settings = _settings(KEYLEDGER_BACKGROUND_JOBS=place, KEYLEDGER_WORKERS=workers)
    assert settings.jobs_in_own_process is own


def test_an_unknown_place_is_refused_naming_the_choices() -> None:
    with pytest.raises(SettingsError, match="auto, process, workers"):
        _settings(KEYLEDGER_BACKGROUND_JOBS="threads")
