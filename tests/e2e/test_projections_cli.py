"""`keyledger projections rebuild | copies | drop-copy` and `clients list --as-of-copy`, as an
admin runs them beside a serving `keyledger serve`."""

from __future__ import annotations

import json
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from tests.e2e.server import KEYLEDGER, cli, cli_json, environment, free_port, serve


def test_a_rebuild_beside_a_serving_server_shows_progress_and_swaps_in(
    postgres_url: str, tmp_path: Path
) -> None:
    env = environment(postgres_url, tmp_path / "keys", free_port())
    with serve(env, log=tmp_path / "serve.log") as base:
        client = cli_json(env, "clients", "register", "--name", "job", "--scope", "a")
        form = {"grant_type": "client_credentials"}
        auth = (client["client_id"], client["client_secret"])
        time.sleep(1.2)
        rebuilding = subprocess.Popen(
            [KEYLEDGER, "projections", "rebuild", "clients", "--json"],
            env={**env, "COLUMNS": "120"},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        statuses = []
        while rebuilding.poll() is None:
            statuses.append(httpx.post(f"{base}/oauth2/token", data=form, auth=auth).status_code)
        out, err = rebuilding.communicate()
        statuses.append(httpx.post(f"{base}/oauth2/token", data=form, auth=auth).status_code)
    assert rebuilding.returncode == 0, err
    report = json.loads(out)
    assert (report["projection"], report["table"], report["records"]) == (
        "clients",
        "keyledger_clients_v4",
        2,  # the CLI's admin client and the job
    )
    assert "rebuilding clients" in err
    assert "events/s" in err
    assert set(statuses) == {200}


def test_a_copy_as_of_a_moment_is_listed_and_queried_then_dropped(tmp_path: Path) -> None:
    env = environment(f"sqlite:///{tmp_path}/k.db", tmp_path / "keys", free_port())
    with serve(env, log=tmp_path / "serve.log"):
        _copy_query_and_drop(env)


def _copy_query_and_drop(env: dict[str, str]) -> None:
    first = cli_json(env, "clients", "register", "--name", "first", "--scope", "a")
    time.sleep(0.05)
    moment = datetime.now(UTC)
    time.sleep(0.05)
    cli_json(env, "clients", "register", "--name", "second", "--scope", "a")
    assert cli(env, "clients", "suspend", first["client_id"], "--reason", "r").returncode == 0

    made = cli(env, "projections", "rebuild", "clients", "--until", moment.isoformat())
    assert made.returncode == 0, made.stderr
    name = f"clients@{moment:%Y%m%dT%H%M%SZ}"
    assert f"copy {name}: clients as of {moment.isoformat()}" in made.stdout
    assert f"keyledger clients list --as-of-copy {name}" in made.stdout

    listed = cli_json(env, "projections", "copies")
    assert [(c["name"], c["records"]) for c in listed] == [(name, 2)]  # the admin and first
    then = cli_json(env, "clients", "list", "--as-of-copy", name)
    assert [(c["name"], c["status"]) for c in then][1:] == [("first", "active")]
    now = cli_json(env, "clients", "list")
    assert [(c["name"], c["status"]) for c in now][1:] == [
        ("first", "suspended"),
        ("second", "active"),
    ]

    assert cli(env, "projections", "drop-copy", name, "--yes").returncode == 0
    assert cli_json(env, "projections", "copies") == []


def test_bad_rebuild_requests_exit_1_with_one_line_and_change_nothing(tmp_path: Path) -> None:
    env = environment(f"sqlite:///{tmp_path}/k.db", tmp_path / "keys", free_port())
    with serve(env, log=tmp_path / "serve.log"):
        _bad_rebuild_requests(env)


def _bad_rebuild_requests(env: dict[str, str]) -> None:
    cli_json(env, "clients", "register", "--name", "first", "--scope", "a")
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    cases = {
        ("projections", "rebuild", "tokens"): "no projection named 'tokens'",
        ("projections", "rebuild", "clients", "--until", "yesterday"): "RFC 3339",
        ("projections", "rebuild", "clients", "--until", future): "in the future",
        ("projections", "drop-copy", "clients@20200101T000000Z", "-y"): "no copy named",
        ("clients", "list", "--as-of-copy", "nope"): "no copy named 'nope'",
    }
    for args, message in cases.items():
        done = cli(env, *args)
        assert done.returncode == 1, args
        assert message in done.stderr, (args, done.stderr)
        assert done.stderr.count("\n") == 1, done.stderr
    assert cli_json(env, "projections", "copies") == []
