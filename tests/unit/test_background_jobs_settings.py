"""Where `serve` runs its background jobs: KEYLEDGER_BACKGROUND_JOBS, whatever the worker
count."""

from __future__ import annotations

import pytest

from api.settings import Settings, SettingsError


def _settings(**env: str) -> Settings:
    return Settings.from_env({"KEYLEDGER_DATABASE_URL": "sqlite:///k.db", **env})


def test_by_default_a_single_worker_has_them_in_a_process_of_their_own() -> None:
    assert _settings().jobs_in_own_process


def test_by_default_several_workers_have_them_in_a_process_of_their_own() -> None:
    assert _settings(KEYLEDGER_WORKERS="2").jobs_in_own_process


@pytest.mark.parametrize("workers", ["1", "2"])
def test_workers_runs_them_as_threads_whatever_the_worker_count(workers: str) -> None:
    settings = _settings(KEYLEDGER_BACKGROUND_JOBS="workers", KEYLEDGER_WORKERS=workers)
    assert not settings.jobs_in_own_process


@pytest.mark.parametrize("workers", ["1", "2"])
def test_process_runs_them_in_a_process_of_their_own_whatever_the_worker_count(
    workers: str,
) -> None:
    settings = _settings(KEYLEDGER_BACKGROUND_JOBS="process", KEYLEDGER_WORKERS=workers)
    assert settings.jobs_in_own_process


def test_an_unknown_place_is_refused_naming_the_choices() -> None:
    with pytest.raises(SettingsError, match="auto, workers, process"):
        _settings(KEYLEDGER_BACKGROUND_JOBS="threads")
