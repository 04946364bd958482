"""A failing background loop's log: each different failure once per streak, then its recovery."""

from __future__ import annotations

import logging

import pytest

from projections.follower import Health


def _failing_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "is failing" in r.getMessage()]


def test_a_loop_alternating_between_two_errors_logs_each_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    health = Health("analytics")
    with caplog.at_level(logging.ERROR):
        for _ in range(5):
            health.failed(ConnectionError("couldn't get a connection"))
            health.failed(ConnectionRefusedError("Connection refused"))
    assert _failing_lines(caplog) == [
        "analytics is failing, retrying: ConnectionError: couldn't get a connection",
        "analytics is failing, retrying: ConnectionRefusedError: Connection refused",
    ]
    assert health.failure == "ConnectionRefusedError: Connection refused"


def test_after_a_recovery_the_same_error_is_logged_again(
    caplog: pytest.LogCaptureFixture,
) -> None:
    health = Health("analytics")
    with caplog.at_level(logging.WARNING):
        health.failed(ConnectionError("down"))
        health.succeeded()
        health.failed(ConnectionError("down"))
    assert len(_failing_lines(caplog)) == 2
    assert [r.getMessage() for r in caplog.records].count("analytics recovered") == 1
