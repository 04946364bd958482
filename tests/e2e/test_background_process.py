"""`keyledger serve` runs the audit relay, the analytics table and the ledger in one process
of its own beside the request workers when KEYLEDGER_BACKGROUND_JOBS=process (an opt-in)."""

from __future__ import annotations

import os
import re
import signal
import time
from pathlib import Path

import httpx
import pytest

from adapters.kafka import EmbeddedBroker
from tests.e2e.scrape import scrape, value, wait_until
from tests.e2e.server import cli_json, environment, free_port, serve

RUNNING = re.compile(rb"background process (\d+) running: ([a-z ,]+)")


def _environment(tmp_path: Path, broker: EmbeddedBroker, **extra: str) -> dict[str, str]:
    extra = {"KEYLEDGER_BACKGROUND_JOBS": "process", **extra}
    return environment(
        f"sqlite:///{tmp_path}/k.db",
        tmp_path / "keys",
        free_port(),
        KEYLEDGER_KAFKA_BOOTSTRAP=broker.bootstrap,
        KEYLEDGER_AUDIT_TOPIC=f"audit-{tmp_path.name[-12:]}",
        KEYLEDGER_LOG_LEVEL="info",
        **extra,
    )


def _background_pids(log: Path) -> list[int]:
    return [int(m.group(1)) for m in RUNNING.finditer(log.read_bytes())]


def _token(base: str, env: dict[str, str]) -> None:
    """A token for a new client (the CLI that registers it gets one too)."""
    created = cli_json(env, "clients", "register", "--name", "job", "--scope", "read")
    time.sleep(1.2)  # DESIGN.md invariant 2: the worker knows the client within a second
    response = httpx.post(
        f"{base}/oauth2/token",
        data={"grant_type": "client_credentials"},
        auth=(created["client_id"], created["client_secret"]),
    )
    assert response.status_code == 200, response.text


def _published(base: str) -> float:
    return value(scrape(f"{base}/metrics"), "keyledger_relay_published_events_total") or 0


def test_the_jobs_run_in_a_process_of_their_own_whose_metrics_serve_reports(
    tmp_path: Path, broker: EmbeddedBroker
) -> None:
    env, log = _environment(tmp_path, broker), tmp_path / "serve.log"
    with serve(env, log=log) as base:
        wait_until(lambda: bool(_background_pids(log)), 30, "the background process starts")
        [pid] = _background_pids(log)
        assert b"audit relay, analytics, ledger" in log.read_bytes()
        _token(base, env)
        wait_until(lambda: _published(base) > 0, 30, "the relay publishes")
        samples = scrape(f"{base}/metrics")  # the worker's own counters, added up with it
        assert value(samples, "keyledger_tokens_issued_total", client_id="other") == 2  # +CLI
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # stopped with the server


def test_a_background_process_that_dies_is_started_again_and_goes_on(
    tmp_path: Path, broker: EmbeddedBroker
) -> None:
    env, log = _environment(tmp_path, broker), tmp_path / "serve.log"
    with serve(env, log=log) as base:
        wait_until(lambda: bool(_background_pids(log)), 30, "the background process starts")
        os.kill(_background_pids(log)[0], signal.SIGKILL)
        wait_until(lambda: len(_background_pids(log)) == 2, 30, "a new one starts")
        before = _published(base)
        _token(base, env)
        wait_until(lambda: _published(base) > before, 30, "the new one publishes")
    assert b"the background process exited (code -9)" in log.read_bytes()


def test_with_background_jobs_in_the_workers_no_process_starts_and_the_relay_runs(
    tmp_path: Path, broker: EmbeddedBroker
) -> None:
    env = _environment(tmp_path, broker, KEYLEDGER_BACKGROUND_JOBS="workers")
    log = tmp_path / "serve.log"
    with serve(env, log=log) as base:
        _token(base, env)
        wait_until(lambda: _published(base) > 0, 30, "the relay publishes")
    assert _background_pids(log) == []
