"""`keyledger keys list|rotate` over the admin API: the JWKS follows at once."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx

from tests.e2e.server import cli, cli_json, environment, free_port, serve


def test_a_rotation_from_the_cli_is_published_by_the_running_server_within_a_second(
    tmp_path: Path,
) -> None:
    env = environment(f"sqlite:///{tmp_path}/k.db", tmp_path / "keys", free_port())
    with serve(env, log=tmp_path / "serve.log") as base:
        [first] = cli_json(env, "keys", "list")["keys"]
        assert first["status"] == "active"
        pending = cli_json(env, "keys", "rotate", "--delay", "10m", "--reason", "test")["key"]
        assert pending["status"] == "pending"
        deadline = time.monotonic() + 1.0
        while True:
            kids = {k["kid"] for k in httpx.get(f"{base}/oauth2/jwks").json()["keys"]}
            if kids == {first["kid"], pending["kid"]} or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert kids == {first["kid"], pending["kid"]}
        again = cli(env, "keys", "rotate", "--delay", "10m")
        assert again.returncode == 1
        assert "already waiting to sign" in again.stderr
        bad = cli(env, "keys", "rotate", "--delay", "soon")
        assert bad.returncode == 1
        assert "not a duration" in bad.stderr
        listed = json.loads(cli(env, "keys", "list", "--json").stdout)["keys"]
        assert [k["status"] for k in listed] == ["active", "pending"]
