"""What the background process reports to the workers (api/background_status.py): its
failing jobs while it reports, and itself once it stops reporting."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from api.background_status import (
    PROCESS,
    SILENT_AFTER,
    STATUS_ENV,
    report,
    reported_failures,
    status_file,
)
from projections.follower import Health


def _failing(name: str, error: str) -> Health:
    health = Health(name)
    health.failed(RuntimeError(error))
    return health


def test_a_process_that_serve_did_not_start_reports_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(STATUS_ENV, raising=False)
    assert reported_failures() == {}


def test_the_failing_jobs_are_reported_and_the_healthy_ones_are_not() -> None:
    with status_file() as path:
        report(path, [_failing("ledger", "store gone"), Health("analytics follower")])
        assert reported_failures() == {"ledger": "RuntimeError: store gone"}


def test_a_fresh_status_file_reports_nothing_failing() -> None:
    with status_file():
        assert reported_failures() == {}


def test_a_report_older_than_the_limit_names_the_process() -> None:
    with status_file() as path:
        report(path, [])
        later = time.time() + SILENT_AFTER + 5
        assert reported_failures(now=later)[PROCESS].startswith("no status report for")


@pytest.mark.parametrize("content", ["", "{", '{"failing": {}}', '{"at": "x", "failing": 3}'])
def test_an_unreadable_report_names_the_process(content: str) -> None:
    with status_file() as path:
        path.write_text(content)
        assert PROCESS in reported_failures()


def test_a_missing_report_names_the_process() -> None:
    with status_file() as path:
        path.unlink()
        assert PROCESS in reported_failures()


def test_serve_removes_the_file_and_its_variable_when_it_stops(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(STATUS_ENV, raising=False)
    with status_file() as path:
        assert Path(path).exists()
    assert not path.exists()
    assert reported_failures() == {}
