"""The admin CLI as people use it (issue 15): signed in once with a private profile, full values
however it is printed, scripts served by --json and -q, no tracebacks, no accidents."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization

from tests.assertions import client_key, jwks_of
from tests.e2e.server import KEYLEDGER, cli, cli_json, environment, free_port, serve

CLI_VARIABLES = ("KEYLEDGER_SERVER", "KEYLEDGER_ADMIN_CLIENT_ID", "KEYLEDGER_ADMIN_CLIENT_SECRET")


class Served:
    def __init__(self, env: dict[str, str], base: str, home: Path) -> None:
        self.env, self.base, self.home = env, base, home

    def signed_out(self, **extra: str) -> dict[str, str]:
        """The environment of an admin's machine that has not logged in (its own config)."""
        env = {k: v for k, v in self.env.items() if k not in CLI_VARIABLES}
        env["XDG_CONFIG_HOME"] = str(self.home / uuid.uuid4().hex[:8])
        return {**env, **extra}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    tmp = tmp_path_factory.mktemp("cli")
    env = environment(f"sqlite:///{tmp}/k.db", tmp / "keys", free_port())
    with serve(env, log=tmp / "serve.log") as base:
        yield Served(env, base, tmp)


@pytest.fixture
def client(served: Served) -> dict[str, Any]:
    created: dict[str, Any] = cli_json(
        served.env, "clients", "register", "--name", "job", "--scope", "a b"
    )
    return created


def login(served: Served, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [KEYLEDGER, "login", "--server", served.base, *args],
        env=env,
        input=served.env["KEYLEDGER_ADMIN_CLIENT_SECRET"] + "\n",
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_a_table_keeps_full_ids_when_piped(served: Served, client: dict[str, Any]) -> None:
    listed = cli(served.env, "clients", "list")
    assert listed.returncode == 0, listed.stderr
    assert client["client_id"] in listed.stdout
    assert "…" not in listed.stdout


def test_quiet_prints_ids_one_per_line(served: Served, client: dict[str, Any]) -> None:
    ids = cli(served.env, "clients", "list", "-q").stdout.split("\n")
    assert client["client_id"] in ids
    assert all(len(i) == 36 for i in ids if i)


def test_show_prints_fields_never_python_reprs(served: Served, client: dict[str, Any]) -> None:
    shown = cli(served.env, "clients", "show", client["client_id"])
    assert shown.returncode == 0, shown.stderr
    for repr_only in ("None", "{'", "['", "True", "False"):
        assert repr_only not in shown.stdout, shown.stdout
    as_json = json.loads(cli(served.env, "clients", "show", client["client_id"], "--json").stdout)
    assert as_json["client_id"] == client["client_id"]


def test_a_closed_pipe_ends_quietly(served: Served, client: dict[str, Any]) -> None:
    proc = subprocess.Popen(
        [KEYLEDGER, "clients", "list"],
        env=served.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None
    proc.stdout.close()  # the reader is gone before the command writes (`| head -0`)
    _, error = proc.communicate(timeout=30)
    assert proc.returncode in (0, 141)
    assert b"Traceback" not in error
    assert b"BrokenPipe" not in error


def test_version_and_completion(served: Served) -> None:
    version = cli(served.env, "--version")
    assert version.returncode == 0
    assert version.stdout.startswith("keyledger ")
    script = cli(served.env, "completion", "bash")
    assert "_KEYLEDGER_COMPLETE" in script.stdout


def test_an_irreversible_command_without_a_terminal_refuses_unless_told_yes(
    served: Served, client: dict[str, Any]
) -> None:
    refused = cli(served.env, "clients", "delete", client["client_id"])
    assert refused.returncode != 0
    assert "--yes" in refused.stderr
    status = cli_json(served.env, "clients", "show", client["client_id"], "--json")["status"]
    assert status == "active"
    deleted = cli(served.env, "clients", "delete", client["client_id"], "--yes")
    assert deleted.returncode == 0, deleted.stderr


def test_every_command_help_has_an_example(served: Served) -> None:
    for command in (["clients", "register"], ["clients", "delete"], ["keys", "rotate"], ["login"]):
        help_text = cli(served.env, *command, "--help").stdout
        assert "Example" in help_text, command
        assert "keyledger " + command[0] in help_text.split("Example", 1)[1], command


def test_login_keeps_a_private_profile_and_later_commands_use_it(served: Served) -> None:
    env = served.signed_out()
    done = login(
        served,
        env,
        "--client-id",
        served.env["KEYLEDGER_ADMIN_CLIENT_ID"],
        "--client-secret-stdin",
    )
    assert done.returncode == 0, done.stderr
    profile = Path(env["XDG_CONFIG_HOME"]) / "keyledger" / "profile.json"
    assert stat.S_IMODE(profile.stat().st_mode) == 0o600
    assert stat.S_IMODE(profile.parent.stat().st_mode) == 0o700
    assert cli(env, "clients", "list", "-q").returncode == 0


def test_a_profile_others_can_read_is_refused(served: Served) -> None:
    env = served.signed_out()
    client_id = served.env["KEYLEDGER_ADMIN_CLIENT_ID"]
    assert login(served, env, "--client-id", client_id, "--client-secret-stdin").returncode == 0
    profile = Path(env["XDG_CONFIG_HOME"]) / "keyledger" / "profile.json"
    os.chmod(profile, 0o644)
    refused = cli(env, "clients", "list")
    assert refused.returncode == 1
    assert "profile.json" in refused.stderr
    assert "Traceback" not in refused.stderr


def test_a_wrong_secret_is_not_saved(served: Served) -> None:
    env = served.signed_out()
    wrong = subprocess.run(
        [
            KEYLEDGER,
            "login",
            "--server",
            served.base,
            "--client-id",
            str(uuid.uuid4()),
            "--client-secret-stdin",
        ],
        env=env,
        input="kl_secret_wrong\n",
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert wrong.returncode == 1
    assert wrong.stderr.startswith("error: ")
    assert not (Path(env["XDG_CONFIG_HOME"]) / "keyledger" / "profile.json").exists()


def test_a_private_key_jwt_admin_signs_in_with_its_key_file(served: Served, tmp_path: Path) -> None:
    key = client_key("ES256")
    jwks_file = tmp_path / "admin-jwks.json"
    jwks_file.write_text(json.dumps(jwks_of(key)))
    pem = tmp_path / "admin.pem"
    pem.write_bytes(
        key.private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    admin = cli_json(
        served.env,
        "clients",
        "register",
        "--name",
        "keyless-admin",
        "--scope",
        "keyledger:admin:read",
        "--auth-method",
        "private_key_jwt",
        "--jwks-file",
        str(jwks_file),
    )
    env = served.signed_out()
    done = login(served, env, "--client-id", admin["client_id"], "--key-file", str(pem))
    assert done.returncode == 0, done.stderr
    assert cli(env, "clients", "list", "-q").returncode == 0
    refused = cli(env, "clients", "register", "--name", "x", "--scope", "a")
    assert refused.returncode == 1
    assert "keyledger:admin:clients" in refused.stderr  # a reader may not register


def test_a_refusal_and_an_unreachable_server_are_one_line(served: Served) -> None:
    unknown = cli(served.env, "clients", "show", str(uuid.uuid4()))
    assert unknown.returncode == 1
    assert unknown.stderr.startswith("error: ")
    assert unknown.stderr.count("\n") == 1
    away = cli({**served.env, "KEYLEDGER_SERVER": "http://127.0.0.1:9"}, "clients", "list")
    assert away.returncode == 1
    assert "http://127.0.0.1:9" in away.stderr
    assert "Traceback" not in away.stderr
