"""Run `keyledger serve` and the `keyledger` CLI as real subprocesses.

A served environment also holds what an admin's machine holds: `KEYLEDGER_SERVER` and an
admin client's credentials, so `cli(env, "clients", ...)` goes over the admin API.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from adapters.client_secrets import SecretHasher
from adapters.clock import SystemClock
from adapters.event_store import NotInstalled
from api.bootstrap import installation_secrets, open_ledger, prepare
from api.settings import Settings
from api.usecases.client_admin import ADMIN_SCOPE, register_client
from domain.client_settings import ClientSettings

KEYLEDGER = str(Path(sys.executable).parent / "keyledger")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def environment(
    database_url: str, keys_dir: Path, port: int = 0, *, install: bool = True, **extra: str
) -> dict[str, str]:
    """The environment of a keyledger process; with `install`, the installation is set up
    first, as the first `keyledger serve` (or `admin bootstrap`) would: only those two may
    create one, so every other command needs it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEYLEDGER_")}
    env.update(
        {
            "KEYLEDGER_DATABASE_URL": database_url,
            "KEYLEDGER_KEYS_DIR": str(keys_dir),
            "KEYLEDGER_PORT": str(port),
            "KEYLEDGER_LOG_LEVEL": "warning",
            # Tests about the audit stream pass their own broker (or none: the embedded one).
            "KEYLEDGER_KAFKA_BOOTSTRAP": "off",
            # The CLI's profile and token cache: this test's own, never the user's.
            "XDG_CONFIG_HOME": str(keys_dir.parent / "cli-config"),
            **extra,
        }
    )
    if install:
        prepare(Settings.from_env(env), create=True)
    return env


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [KEYLEDGER, *args], env=env, capture_output=True, text=True, timeout=60, check=False
    )


def cli_json(env: dict[str, str], *args: str) -> Any:
    done = cli(env, *args, "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def register_admin(env: dict[str, str]) -> dict[str, str] | None:
    """An admin client of the installation (as `admin bootstrap --force` makes one), as the
    CLI's variables; None while there is no installation yet (the first `serve` makes it)."""
    settings = Settings.from_env(env)
    try:
        ledger = open_ledger(settings)
    except NotInstalled:
        return None
    try:
        hasher = SecretHasher(installation_secrets(settings, ledger).pepper)
        admin = ClientSettings.create(name="cli-admin", allowed_scopes=[ADMIN_SCOPE])
        created = register_client(ledger, hasher, SystemClock(), admin, actor="tests")
    finally:
        ledger.close()
    return {
        "KEYLEDGER_ADMIN_CLIENT_ID": created.client_id,
        "KEYLEDGER_ADMIN_CLIENT_SECRET": created.client_secret,
    }


@contextmanager
def serve(
    env: dict[str, str], *args: str, log: Path, admin: bool = True, cafile: Path | None = None
) -> Iterator[str]:
    """A running server; yields its base URL once /readyz answers 200; stopped afterwards.
    With `admin` (and no admin in `env` yet), `env` gains an admin client's CLI variables.
    With TLS in `env`, the URL is https and readiness is checked against `cafile`."""
    port = env["KEYLEDGER_PORT"]
    # Registered before the server starts, it is in the clients model the server loads: no
    # token request has to wait for it (a refused one would spend the address's budget).
    admin_now = admin and "KEYLEDGER_ADMIN_CLIENT_ID" not in env
    if admin_now and (credentials := register_admin(env)) is not None:
        env.update(credentials)
        admin_now = False
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [KEYLEDGER, "serve", *args], env=env, stdout=out, stderr=subprocess.STDOUT
        )
        tls = bool(env.get("KEYLEDGER_TLS_CERT_FILE"))
        base = f"{'https' if tls else 'http'}://127.0.0.1:{port}"
        verify = ssl.create_default_context(cafile=cafile) if cafile else True
        try:
            deadline = time.monotonic() + 30
            while True:
                if proc.poll() is not None:
                    raise AssertionError(f"server exited: {log.read_text()}")
                try:
                    if httpx.get(f"{base}/readyz", timeout=1, verify=verify).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise AssertionError(f"server not ready: {log.read_text()}")
                time.sleep(0.1)
            env["KEYLEDGER_SERVER"] = base
            if admin_now and (credentials := register_admin(env)) is not None:
                env.update(credentials)
                time.sleep(1.2)  # DESIGN.md invariant 2: every replica knows it within 1 s
            yield base
        finally:
            stop(proc)


def stop(proc: subprocess.Popen[bytes], within: float = 20) -> None:
    """SIGTERM, and SIGKILL if it has not exited within `within` seconds."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=within)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def embedded_environment(tmp_path: Path) -> tuple[dict[str, str], int]:
    """`make run`'s set-up on SQLite: no bootstrap, so `serve` starts the embedded broker
    (on a free port); the environment and that port."""
    broker_port = free_port()
    env = environment(
        f"sqlite:///{tmp_path}/k.db",
        tmp_path / "keys",
        free_port(),
        KEYLEDGER_KAFKA_BOOTSTRAP="",
        KEYLEDGER_EMBEDDED_BROKER_PORT=str(broker_port),
    )
    return env, broker_port
