"""Structured logs of an end-to-end run: JSON lines with a request id (and the client id where
known), and not one secret, secret hash or token in any line."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx

from adapters.client_secrets import SecretHasher
from adapters.installation import read_secrets
from tests.e2e.server import cli, cli_json, environment, free_port, serve

FORM = {"grant_type": "client_credentials"}


def token(base: str, client_id: str, secret: str) -> str:
    response = httpx.post(f"{base}/oauth2/token", data=FORM, auth=(client_id, secret))
    assert response.status_code == 200, response.text
    value: str = response.json()["access_token"]
    return value


def test_an_end_to_end_run_logs_json_lines_with_request_ids_and_no_secrets(tmp_path: Path) -> None:
    env = environment(
        f"sqlite:///{tmp_path}/k.db", tmp_path / "keys", free_port(), KEYLEDGER_LOG_LEVEL="debug"
    )
    secrets: list[str] = []
    tokens: list[str] = []
    outputs: list[str] = []
    with serve(env, log=tmp_path / "serve.log") as base:
        admin = cli_json(env, "admin", "bootstrap", "--force")  # besides the CLI's own admin
        secrets.append(admin["client_secret"])
        secrets.append(env["KEYLEDGER_ADMIN_CLIENT_SECRET"])
        time.sleep(1.2)
        bearer = {
            "Authorization": f"Bearer {token(base, admin['client_id'], admin['client_secret'])}"
        }
        tokens.append(bearer["Authorization"].split()[1])
        made = httpx.post(
            f"{base}/admin/clients",
            json={"name": "job", "allowed_scopes": ["a", "keyledger:introspect"]},
            headers=bearer,
        ).json()
        secrets.append(made["client_secret"])
        time.sleep(1.2)
        job = (made["client_id"], made["client_secret"])
        tokens.append(token(base, *job))
        traced = httpx.post(
            f"{base}/oauth2/introspect",
            data={"token": tokens[-1]},
            auth=job,
            headers={"X-Request-Id": "trace-123"},
        )
        assert traced.headers["x-request-id"] == "trace-123"
        assert (
            httpx.post(f"{base}/oauth2/token", data=FORM, auth=(job[0], "guess")).status_code == 401
        )
        assert (
            httpx.post(
                f"{base}/oauth2/token", data=FORM, auth=("nobody", made["client_secret"])
            ).status_code
            == 401
        )
        httpx.post(f"{base}/oauth2/revoke", data={"token": tokens[-1]}, auth=job)
        rotated = httpx.post(
            f"{base}/admin/clients/{job[0]}/secret/rotate", json={"grace": "1h"}, headers=bearer
        ).json()
        secrets.append(rotated["client_secret"])
        done = cli(env, "clients", "rotate-secret", job[0], "--json")
        secrets.append(json.loads(done.stdout)["client_secret"])
        outputs.append(done.stderr)
        outputs.append(cli(env, "clients", "list").stderr)
    lines = [line for line in (tmp_path / "serve.log").read_text().splitlines() if line.strip()]
    records: list[dict[str, Any]] = [json.loads(line) for line in lines]  # every line is JSON

    assert all({"timestamp", "level", "event"} <= set(r) for r in records)
    requests = [r for r in records if r.get("logger") == "keyledger.access"]
    assert len(requests) >= 8
    assert all(len(r["request_id"]) >= 1 for r in requests)
    assert len({r["request_id"] for r in requests}) == len(requests)  # one per request
    assert [r["route"] for r in requests if r["request_id"] == "trace-123"] == [
        "/oauth2/introspect"
    ]
    issued = [r for r in requests if r["route"] == "/oauth2/token" and r["status"] == 200]
    assert made["client_id"] in {r.get("client_id") for r in issued}
    assert any(
        r.get("client_id") == admin["client_id"]
        for r in requests
        if r["route"].startswith("/admin")
    )

    hasher = SecretHasher(read_secrets(tmp_path / "keys", None, None, create=False).pepper)
    everything = "\n".join([*lines, *outputs])
    for secret in secrets:
        assert secret not in everything
        assert secret.removeprefix("kl_secret_") not in everything
        assert hasher.hash(secret).split("$")[-1] not in everything
    for value in tokens:
        assert value not in everything
        assert value.split(".")[2] not in everything  # not even the signature
