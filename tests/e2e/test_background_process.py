"""`keyledger serve` runs the audit relay, the analytics table and the ledger in one process
of its own beside its request workers, however many (KEYLEDGER_BACKGROUND_JOBS=auto, the
default), and /readyz on any worker names it while it does not report."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from adapters.kafka import EmbeddedBroker
from tests.e2e.scrape import label_values, scrape, value, wait_until
from tests.e2e.server import cli_json, environment, free_port, serve

RUNNING = re.compile(rb"background process (\d+) running: ([a-z ,]+)")


def _environment(tmp_path: Path, broker: EmbeddedBroker, **extra: str) -> dict[str, str]:
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


def _kill_the_background_process(log: Path) -> None:
    """SIGKILL to serve's first background process, once it runs."""
    wait_until(lambda: bool(_background_pids(log)), 30, "the background process starts")
    os.kill(_background_pids(log)[0], signal.SIGKILL)


def _failing(base: str) -> str | None:
    """What /readyz says of the background process, if it is failing."""
    failing: dict[str, str] = httpx.get(f"{base}/readyz").json()["failing"]
    return failing.get("background process")


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


def test_a_single_workers_metrics_carry_its_own_process_and_python_metrics(
    tmp_path: Path, broker: EmbeddedBroker
) -> None:
    """Kept in multiprocess files beside the background process, the counters add up; the
    worker's memory, CPU and interpreter come from the worker itself."""
    env, log = _environment(tmp_path, broker), tmp_path / "serve.log"
    with serve(env, log=log) as base:
        samples = scrape(f"{base}/metrics")
    assert (value(samples, "process_resident_memory_bytes") or 0) > 10_000_000
    assert label_values(samples, "python_info", "implementation") == {"CPython"}


def test_a_background_process_that_dies_is_started_again_and_goes_on(
    tmp_path: Path, broker: EmbeddedBroker
) -> None:
    env, log = _environment(tmp_path, broker), tmp_path / "serve.log"
    with serve(env, log=log) as base:
        _kill_the_background_process(log)
        wait_until(lambda: len(_background_pids(log)) == 2, 30, "a new one starts")
        before = _published(base)
        _token(base, env)
        wait_until(lambda: _published(base) > before, 30, "the new one publishes")


def test_readyz_reports_a_dead_background_process_until_its_replacement_runs(
    tmp_path: Path, broker: EmbeddedBroker
) -> None:
    env, log = _environment(tmp_path, broker), tmp_path / "serve.log"
    with serve(env, log=log) as base:
        _kill_the_background_process(log)
        wait_until(lambda: _failing(base) is not None, 10, "/readyz reports it")
        assert "exited with code -9" in str(_failing(base))
        wait_until(lambda: _failing(base) is None, 30, "/readyz: the new one runs")


def test_readyz_on_every_worker_reports_a_background_process_that_stops_reporting(
    tmp_path: Path, broker: EmbeddedBroker
) -> None:
    env, log = _environment(tmp_path, broker, KEYLEDGER_WORKERS="2"), tmp_path / "serve.log"
    with serve(env, log=log) as base:
        wait_until(lambda: bool(_background_pids(log)), 30, "the background process starts")
        wait_until(lambda: _failing(base) is None, 15, "it reports")
        [pid] = _background_pids(log)
        os.kill(pid, signal.SIGSTOP)  # alive, but stuck: no status report
        try:
            wait_until(lambda: _failing(base) is not None, 20, "/readyz reports it")
            assert "no status report for" in str(_failing(base))
            answers = {_failing(base) is not None for _ in range(8)}  # whichever worker
            assert answers == {True}
        finally:
            os.kill(pid, signal.SIGCONT)
        wait_until(lambda: _failing(base) is None, 15, "/readyz: it reports again")


def _alive(pid: int) -> bool:
    """Running: neither gone nor a zombie waiting for its parent (serve is this test's)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def _exit_times(first: int, second: int, within: float) -> tuple[float, float]:
    """When each of two processes was first seen gone (seconds from now)."""
    start, gone = time.monotonic(), dict[int, float]()
    while len(gone) < 2 and time.monotonic() - start < within:
        for pid in (first, second):
            if pid not in gone and not _alive(pid):
                gone[pid] = time.monotonic() - start
        time.sleep(0.05)
    assert len(gone) == 2, f"still running after {within} s: {gone}"
    return gone[first], gone[second]


def _parent_of(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


@pytest.mark.parametrize(
    "shape",
    [{}, {"KEYLEDGER_BACKGROUND_JOBS": "process", "KEYLEDGER_WORKERS": "2"}],
    ids=["one worker", "two workers"],
)
def test_a_stop_signal_reaches_the_background_process_before_the_workers_have_stopped(
    tmp_path: Path, broker: EmbeddedBroker, shape: dict[str, str]
) -> None:
    env, log = _environment(tmp_path, broker, **shape), tmp_path / "serve.log"
    with serve(env, log=log):
        wait_until(lambda: bool(_background_pids(log)), 30, "the background process starts")
        [pid] = _background_pids(log)
        server = _parent_of(pid)
        with socket.create_connection(("127.0.0.1", int(env["KEYLEDGER_PORT"]))) as held:
            # A request in flight: the worker's graceful stop waits for it (5 s). The
            # background process must be signalled before that stop ends, not after it.
            held.sendall(
                b"POST /oauth2/token HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                b"Content-Type: application/x-www-form-urlencoded\r\n"
                b"Content-Length: 100\r\n\r\ngrant_type="
            )
            time.sleep(0.3)
            os.kill(server, signal.SIGTERM)
            background_gone, server_gone = _exit_times(pid, server, within=30)
            # Signalled only after the workers' stop, it would leave just before serve does.
            assert server_gone - background_gone > 1.0, (background_gone, server_gone)
    assert len(_background_pids(log)) == 1
    assert b"starting the background process again" not in log.read_bytes()


def test_a_background_process_whose_server_died_before_it_started_does_not_run(
    tmp_path: Path,
) -> None:
    """Orphaned before it could ask to die with its parent: it exits at once."""
    ran = subprocess.run(
        [sys.executable, "-c", "from api.background import run_process; run_process(0)"],
        capture_output=True,
        cwd=tmp_path,
        timeout=15,
        env={k: v for k, v in os.environ.items() if not k.startswith("KEYLEDGER_")},
    )
    assert (ran.returncode, ran.stderr) == (0, b"")


def test_with_background_jobs_in_the_workers_no_process_starts_and_the_relay_runs(
    tmp_path: Path, broker: EmbeddedBroker
) -> None:
    env = _environment(tmp_path, broker, KEYLEDGER_BACKGROUND_JOBS="workers")
    log = tmp_path / "serve.log"
    with serve(env, log=log) as base:
        _token(base, env)
        wait_until(lambda: _published(base) > 0, 30, "the relay publishes")
    assert _background_pids(log) == []
