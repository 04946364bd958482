"""`keyledger detect` against a running server (issue 6): a brute force becomes one alert."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import time
from pathlib import Path

import httpx
import psycopg

from adapters.kafka import EmbeddedBroker
from tests.e2e.server import KEYLEDGER, cli, cli_json, environment, free_port, serve
from tests.kafka import consume


def detector_has_consumed(database_url: str) -> bool:
    with psycopg.connect(database_url) as conn:
        try:
            row = conn.execute("SELECT count(*) FROM keyledger_detector_state").fetchone()
        except psycopg.errors.UndefinedTable:
            return False
    return bool(row and row[0])


def test_fifty_wrong_secrets_raise_exactly_one_brute_force_alert_within_five_seconds(
    postgres_url: str, tmp_path: Path, broker: EmbeddedBroker
) -> None:
    env = environment(
        postgres_url,
        tmp_path / "keys",
        free_port(),
        KEYLEDGER_KAFKA_BOOTSTRAP=broker.bootstrap,
        KEYLEDGER_AUDIT_TOPIC=f"audit-{free_port()}",
        KEYLEDGER_ALERTS_TOPIC=f"alerts-{free_port()}",
        KEYLEDGER_DETECT_GROUP=f"detect-{free_port()}",
        KEYLEDGER_DETECT_SESSION_TIMEOUT_MS="2000",
        KEYLEDGER_LOG_LEVEL="info",
    )
    with serve(env, log=tmp_path / "serve.log") as base:
        client = cli_json(env, "clients", "register", "--name", "job", "--scope", "a")
        log = (tmp_path / "detect.log").open("wb")
        detector = subprocess.Popen([KEYLEDGER, "detect"], env=env, stdout=log, stderr=log)
        try:
            deadline = time.monotonic() + 30
            good = {
                "grant_type": "client_credentials",
                "client_id": client["client_id"],
                "client_secret": client["client_secret"],
            }
            while not detector_has_consumed(postgres_url):  # wait until it joined and read
                assert time.monotonic() < deadline, (tmp_path / "detect.log").read_text()
                assert httpx.post(f"{base}/oauth2/token", data=good).status_code == 200
                time.sleep(0.5)
            started = time.monotonic()
            form = {
                "grant_type": "client_credentials",
                "client_id": client["client_id"],
                "client_secret": "kl_secret_guess",
            }
            with httpx.Client(base_url=base) as http:
                statuses = [http.post("/oauth2/token", data=form).status_code for _ in range(50)]
            assert statuses == [401] * 20 + [429] * 30  # the inline throttle: a burst of 20
            records = asyncio.run(
                consume(broker.bootstrap, env["KEYLEDGER_ALERTS_TOPIC"], lambda rs: bool(rs), 10)
            )
            elapsed = time.monotonic() - started
            time.sleep(1)  # anything more would have come by now
            records = asyncio.run(
                consume(broker.bootstrap, env["KEYLEDGER_ALERTS_TOPIC"], lambda rs: False, 2)
            )
        finally:
            detector.send_signal(signal.SIGTERM)
            assert detector.wait(timeout=20) == 0
            log.close()
        # the alerts as an admin reads them, over the admin API
        listed = json.loads(cli(env, "alerts", "list", "--json").stdout)["alerts"]
        assert [(a["rule"], a["subject"]) for a in listed] == [("brute_force", client["client_id"])]
        assert 10 <= listed[0]["count"] <= 50  # failures arrive counted: at least the threshold
        table = cli(env, "alerts", "list", "--rule", "brute_force").stdout
        assert "brute_force" in table
        assert client["client_id"] in table
    assert elapsed < 5, elapsed
    assert [(r.message["data"]["rule"], r.message["subject"]) for r in records] == [
        ("brute_force", client["client_id"])
    ]
