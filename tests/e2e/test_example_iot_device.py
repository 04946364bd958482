"""examples/iot-device, run as its README says against a live `keyledger serve`, with both
servers restarted under the running device."""

from __future__ import annotations

import ast
import json
import sys
import time
from contextlib import ExitStack
from pathlib import Path

import httpx

from tests.e2e.examples import EXAMPLES, program, run_setup
from tests.e2e.server import cli, environment, free_port, serve

FOLDER = "iot-device"
READINGS = 20


def stored(store: Path) -> list[tuple[str, int]]:
    if not store.exists():
        return []
    return [(row["device"], row["seq"]) for row in map(json.loads, store.read_text().splitlines())]


def wait_until(condition, within: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


def test_the_device_imports_nothing_but_the_standard_library() -> None:
    tree = ast.parse((EXAMPLES / FOLDER / "device.py").read_text())
    imported = {
        alias.name.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    } | {
        node.module.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0
    }
    assert imported - {"__future__"} <= set(sys.stdlib_module_names)


def test_every_reading_arrives_once_through_limits_and_restarts(tmp_path: Path) -> None:
    env = environment(f"sqlite:///{tmp_path}/k.db", tmp_path / "keys", free_port())
    telemetry_port = free_port()
    store = tmp_path / "readings.jsonl"
    keyledger, telemetry, device = ExitStack(), ExitStack(), ExitStack()

    def start_keyledger(n: int) -> str:
        return keyledger.enter_context(serve(env, log=tmp_path / f"keyledger-{n}.log"))

    def start_telemetry(n: int) -> None:
        telemetry.enter_context(
            program(
                FOLDER,
                "telemetry_api.py",
                *("--port", str(telemetry_port), "--store", str(store)),
                *("--burst", "5", "--rate", "4"),
                env=run_env,
                log=tmp_path / f"telemetry-{n}.log",
                ready_url=f"http://127.0.0.1:{telemetry_port}/",
            )
        )

    with keyledger, telemetry, device:
        base = start_keyledger(1)
        credentials = run_setup(FOLDER, env)
        # 60 s tokens renewed 57 s early: the device needs a token every 3 s.
        assert cli(env, "clients", "set-token-ttl", credentials["CLIENT_ID"], "60").returncode == 0
        time.sleep(1.2)
        run_env = {
            **env,
            **credentials,
            "KEYLEDGER_URL": base,
            "TELEMETRY_URL": f"http://127.0.0.1:{telemetry_port}",
            "TOKEN_REFRESH_MARGIN": "57",
        }
        start_telemetry(1)
        running = device.enter_context(
            program(
                FOLDER,
                "device.py",
                *("--interval", "0.05", "--count", str(READINGS), "--max-backoff", "2"),
                env=run_env,
                log=tmp_path / "device.log",
            )
        )
        wait_until(lambda: len(stored(store)) >= 5, 30, "the first readings never arrived")

        keyledger.close()  # keyledger goes down ...
        telemetry.close()  # ... and the telemetry API restarts while it is down: no keys
        start_telemetry(2)
        time.sleep(2.5)
        start_keyledger(2)
        assert running.wait(timeout=90) == 0, (tmp_path / "device.log").read_text()

    device_log = (tmp_path / "device.log").read_text()
    telemetry_log = (tmp_path / "telemetry-1.log").read_text() + (
        tmp_path / "telemetry-2.log"
    ).read_text()
    assert stored(store) == [(credentials["CLIENT_ID"], seq) for seq in range(READINGS)]
    assert "429 device=" in telemetry_log
    assert "503 keys unavailable" in telemetry_log
    assert "ignored Retry-After" not in telemetry_log
    assert "HTTP 429; retrying" in device_log
    assert "HTTP 503; retrying" in device_log
    assert device_log.count("got a token") >= 2
    assert f"sent {READINGS} readings" in device_log


def test_a_deleted_device_gives_up_with_invalid_client(tmp_path: Path) -> None:
    env = environment(f"sqlite:///{tmp_path}/k.db", tmp_path / "keys", free_port())
    with serve(env, log=tmp_path / "keyledger.log") as base:
        credentials = run_setup(FOLDER, env)
        assert cli(env, "clients", "delete", credentials["CLIENT_ID"], "--yes").returncode == 0
        time.sleep(1.2)
        run_env = {**env, **credentials, "KEYLEDGER_URL": base}
        with program(
            FOLDER, "device.py", "--count", "1", env=run_env, log=tmp_path / "device.log"
        ) as running:
            assert running.wait(timeout=30) == 2
    assert "giving up: invalid_client" in (tmp_path / "device.log").read_text()


def test_the_telemetry_api_refuses_bad_requests_and_stores_nothing(tmp_path: Path) -> None:
    env = environment(f"sqlite:///{tmp_path}/k.db", tmp_path / "keys", free_port())
    port, store = free_port(), tmp_path / "readings.jsonl"
    with serve(env, log=tmp_path / "keyledger.log") as base:
        device = run_setup(FOLDER, env)
        token = httpx.post(
            f"{base}/oauth2/token",
            data={"grant_type": "client_credentials", "resource": "https://telemetry.internal"},
            auth=(device["CLIENT_ID"], device["CLIENT_SECRET"]),
        ).json()["access_token"]
        bearer = {"Authorization": f"Bearer {token}"}
        with program(
            FOLDER,
            *("telemetry_api.py", "--port", str(port), "--store", str(store)),
            env={**env, "KEYLEDGER_URL": base},
            log=tmp_path / "telemetry.log",
            ready_url=f"http://127.0.0.1:{port}/",
        ):
            url = f"http://127.0.0.1:{port}/telemetry"
            anonymous = httpx.post(url, json={"seq": 1})
            forged = httpx.post(url, json={"seq": 1}, headers={"Authorization": "Bearer x.y.z"})
            not_json = httpx.post(url, content=b"{", headers=bearer)
            no_seq = httpx.post(url, json={"temperature": 3}, headers=bearer)
    assert (anonymous.status_code, forged.status_code) == (401, 401)
    assert forged.json()["error"] == "invalid_token"
    assert (not_json.status_code, no_seq.status_code) == (400, 400)
    assert stored(store) == []
