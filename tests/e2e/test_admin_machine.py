"""An admin's machine holds a server URL and an admin client's credentials, nothing more
(issue 15): no database URL, no key-encryption key, no pepper. From any directory, the
commands that once forked or broke the installation now work through the admin API."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.server import KEYLEDGER, environment, free_port, serve

CLI_VARIABLES = ("KEYLEDGER_SERVER", "KEYLEDGER_ADMIN_CLIENT_ID", "KEYLEDGER_ADMIN_CLIENT_SECRET")


@pytest.fixture
def laptop(tmp_path: Path) -> Iterator[tuple[dict[str, str], Path, str]]:
    """A served installation, and an admin's environment and empty working directory."""
    env = environment(f"sqlite:///{tmp_path}/k.db", tmp_path / "keys", free_port())
    with serve(env, log=tmp_path / "serve.log") as base:
        admin_env = {k: v for k, v in os.environ.items() if not k.startswith("KEYLEDGER_")}
        admin_env.update({k: env[k] for k in CLI_VARIABLES})
        admin_env["XDG_CONFIG_HOME"] = str(tmp_path / "laptop-config")
        here = tmp_path / "somewhere-else"
        here.mkdir()
        yield admin_env, here, base


def run(env: dict[str, str], here: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [KEYLEDGER, *args], env=env, cwd=here, capture_output=True, text=True, timeout=60
    )


def test_a_client_registered_from_an_admin_machine_authenticates_at_the_server(
    laptop: tuple[dict[str, str], Path, str],
) -> None:
    env, here, base = laptop
    done = run(env, here, "clients", "register", "--name", "job", "--scope", "a", "--json")
    assert done.returncode == 0, done.stderr
    created = json.loads(done.stdout)
    token = httpx.post(
        f"{base}/oauth2/token",
        data={"grant_type": "client_credentials"},
        auth=(created["client_id"], created["client_secret"]),
    )
    assert token.status_code == 200, token.text
    assert list(here.iterdir()) == []  # no ./var, no database, no pepper


def test_a_key_rotated_from_an_admin_machine_is_published_and_the_server_stays_ready(
    laptop: tuple[dict[str, str], Path, str],
) -> None:
    env, here, base = laptop
    done = run(env, here, "keys", "rotate", "--delay", "10m", "--reason", "test", "--json")
    assert done.returncode == 0, done.stderr
    kid = json.loads(done.stdout)["key"]["kid"]
    published = {k["kid"] for k in httpx.get(f"{base}/oauth2/jwks").json()["keys"]}
    assert kid in published
    assert httpx.get(f"{base}/readyz").status_code == 200
    assert list(here.iterdir()) == []  # no ./var/keys, no key-encryption key


def test_a_listing_piped_into_head_ends_quietly(laptop: tuple[dict[str, str], Path, str]) -> None:
    env, here, _ = laptop
    script = f'{KEYLEDGER} clients list | head -1; echo "status=${{PIPESTATUS[0]}}" >&2'
    done = subprocess.run(
        ["bash", "-c", script], env=env, cwd=here, capture_output=True, text=True, timeout=60
    )
    assert done.stdout.split() == ["client_id", "name", "status", "scopes", "ttl", "registered"]
    assert done.stderr.strip() in ("status=0", "status=141")
