"""A default start logs no error (issue 18): `keyledger serve` as `make run` starts it (SQLite,
the embedded broker) serves, publishes to the audit topic and stops without a single
`error`-level record; the broker's refusal of the idempotent producer is a warning."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx

from tests.e2e.server import embedded_environment, serve

REFUSAL = "refused the idempotent producer"


def test_a_default_start_logs_no_error_level_record(tmp_path: Path) -> None:
    env, _ = embedded_environment(tmp_path)
    env["KEYLEDGER_LOG_LEVEL"] = "info"
    log = tmp_path / "server.log"
    with serve(env, log=log) as base:
        token = httpx.post(
            f"{base}/oauth2/token",
            data={"grant_type": "client_credentials"},
            auth=(env["KEYLEDGER_ADMIN_CLIENT_ID"], env["KEYLEDGER_ADMIN_CLIENT_SECRET"]),
        )
        assert token.status_code == 200, token.text
        deadline = time.monotonic() + 30  # the relay's producer has started once it says so
        while REFUSAL not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.2)
    records = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    assert [r for r in records if r["level"] in ("error", "critical")] == []
    assert [r["level"] for r in records if REFUSAL in r["event"]] == ["warning"]
