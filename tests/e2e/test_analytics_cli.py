"""`keyledger analytics ...`: reports on the command line, the keeper as its own process, and
bad input."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import httpx

from tests.e2e.server import KEYLEDGER, cli, cli_json, environment, free_port, serve


def test_a_separate_keeper_keeps_the_table_the_reports_read(tmp_path: Path) -> None:
    env = environment(
        f"sqlite:///{tmp_path}/k.db",
        tmp_path / "keys",
        free_port(),
        KEYLEDGER_ANALYTICS_IN_SERVE="false",
        KEYLEDGER_ANALYTICS_INTERVAL="0.1",
    )
    with serve(env, log=tmp_path / "serve.log") as base:
        keeper = subprocess.Popen(
            [KEYLEDGER, "analytics", "keep"], env=env, stderr=subprocess.PIPE, text=True
        )
        try:
            job = cli_json(env, "clients", "register", "--name", "job", "--scope", "a")
            time.sleep(1.2)
            for _ in range(4):
                reply = httpx.post(
                    f"{base}/oauth2/token",
                    data={"grant_type": "client_credentials"},
                    auth=(job["client_id"], job["client_secret"]),
                )
                assert reply.status_code == 200
            deadline = time.monotonic() + 10
            while True:
                rows = {r["name"]: r for r in cli_json(env, "projections", "status")}
                if rows["analytics"]["lag_events"] == 0:
                    break
                assert time.monotonic() < deadline, rows
                time.sleep(0.2)
            report = cli_json(env, "analytics", "top")
        finally:
            keeper.send_signal(signal.SIGTERM)
            assert keeper.wait(timeout=20) == 0, keeper.stderr.read() if keeper.stderr else ""
    issued = {c["client_name"]: c["issued"] for c in report["clients"]}
    assert issued["job"] == 4


def test_bad_analytics_requests_exit_1_with_the_servers_reason_in_one_line(
    tmp_path: Path,
) -> None:
    env = environment(f"sqlite:///{tmp_path}/k.db", tmp_path / "keys", free_port())
    with serve(env, log=tmp_path / "serve.log"):
        _bad_requests(env)


def _bad_requests(env: dict[str, str]) -> None:
    cases = {
        ("analytics", "issuance", "--since", "yesterday"): "RFC 3339",
        ("analytics", "issuance", "--since", "2020-01-01T00:00Z"): "at most 744 hour buckets",
        ("analytics", "top", "--limit", "0"): "limit must be 1 to 1000",
        ("analytics", "clients", "--rotation-days", "-3"): "1 to 36500",
    }
    for args, message in cases.items():
        done = cli(env, *args)
        assert done.returncode == 1, (args, done.stdout)
        assert message in done.stderr, (args, done.stderr)
        assert len(done.stderr.strip().splitlines()) == 1
    assert cli(env, "analytics", "issuance", "--granularity", "week").returncode == 2  # usage
