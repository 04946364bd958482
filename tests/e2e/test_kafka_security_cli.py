"""`keyledger serve`, `relay` and `detect` as real processes against brokers that enforce TLS
(Debian's stunnel in front of the embedded broker) or SASL (tansu `--authentication`)."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from adapters.kafka import EmbeddedBroker
from adapters.kafka_security import KafkaSecurity
from tests.e2e.examples import EXAMPLES
from tests.e2e.server import KEYLEDGER, cli, cli_json, environment, free_port, serve
from tests.kafka import consume
from tests.kafka_tls import tls_broker

PASSWORD = "e2e-Kafka-pa55word"


@pytest.fixture(scope="module")
def sasl_broker() -> Iterator[EmbeddedBroker]:
    with EmbeddedBroker("127.0.0.1", free_port(), authentication=True) as broker:
        yield broker


def wait_for_line(log: Path, text: str, process: subprocess.Popen[bytes], within: float) -> None:
    deadline = time.monotonic() + within
    while text not in log.read_text():
        assert process.poll() is None, log.read_text()
        assert time.monotonic() < deadline, log.read_text()
        time.sleep(0.1)


@pytest.mark.parametrize("command", ["relay", "detect"])
def test_the_services_name_the_sasl_refusal_and_never_log_the_password(
    tmp_path: Path, sasl_broker: EmbeddedBroker, command: str
) -> None:
    secret = tmp_path / "kafka-password"
    secret.write_text(PASSWORD + "\n")
    env = environment(
        f"sqlite:///{tmp_path}/k.db",
        tmp_path / "keys",
        KEYLEDGER_KAFKA_BOOTSTRAP=sasl_broker.bootstrap,
        KEYLEDGER_KAFKA_SECURITY_PROTOCOL="SASL_PLAINTEXT",
        KEYLEDGER_KAFKA_SASL_MECHANISM="SCRAM-SHA-512",
        KEYLEDGER_KAFKA_SASL_USERNAME="keyledger",
        KEYLEDGER_KAFKA_SASL_PASSWORD_FILE=str(secret),
        KEYLEDGER_LOG_LEVEL="debug",
        KEYLEDGER_RELAY_BACKOFF_MAX="1",
    )
    log = tmp_path / f"{command}.log"
    with log.open("wb") as out:
        process = subprocess.Popen([KEYLEDGER, command], env=env, stdout=out, stderr=out)
        try:
            wait_for_line(
                log,
                f"the broker at {sasl_broker.bootstrap} refused SASL SCRAM-SHA-512 "
                "authentication as 'keyledger'",
                process,
                within=30,
            )
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=20)
    text = log.read_text()
    assert f"on {sasl_broker.bootstrap} (SASL_PLAINTEXT, SCRAM-SHA-512 as keyledger)" in text or (
        f"to {sasl_broker.bootstrap} (SASL_PLAINTEXT, SCRAM-SHA-512 as keyledger)" in text
    )
    assert PASSWORD not in text


def test_a_sasl_protocol_without_a_user_stops_the_relay_with_the_variable_named(
    tmp_path: Path,
) -> None:
    env = environment(
        f"sqlite:///{tmp_path}/k.db",
        tmp_path / "keys",
        install=False,
        KEYLEDGER_KAFKA_BOOTSTRAP="kafka.internal:9093",
        KEYLEDGER_KAFKA_SECURITY_PROTOCOL="SASL_SSL",
        KEYLEDGER_KAFKA_SASL_MECHANISM="SCRAM-SHA-256",
        KEYLEDGER_KAFKA_SASL_PASSWORD=PASSWORD,
    )
    done = cli(env, "relay")
    assert done.returncode == 1
    assert "KEYLEDGER_KAFKA_SECURITY_PROTOCOL=SASL_SSL needs KEYLEDGER_KAFKA_SASL_USERNAME" in (
        done.stderr
    )
    assert "Traceback" not in done.stderr
    assert PASSWORD not in done.stderr + done.stdout


def security_team(script: str, bootstrap: str, cafile: Path) -> list[str]:
    """examples/security-team's consumer with the TLS options, until 3 s of quiet."""
    done = subprocess.run(
        [
            *(sys.executable, script, "--bootstrap", bootstrap, "--idle-exit", "3"),
            *("--session-timeout-ms", "2000", "--group", f"team-{free_port()}"),
            *("--security-protocol", "SSL", "--ssl-cafile", str(cafile)),
        ],
        cwd=EXAMPLES / "security-team",
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def test_serve_publishes_detect_consumes_and_the_security_team_reads_only_through_tls(
    tmp_path: Path,
) -> None:
    with tls_broker(tmp_path / "tls", hosts=("localhost",), advertised_host="localhost") as broker:
        bootstrap = broker.bootstrap
        env = environment(
            f"sqlite:///{tmp_path}/k.db",
            tmp_path / "keys",
            free_port(),
            KEYLEDGER_KAFKA_BOOTSTRAP=bootstrap,
            KEYLEDGER_KAFKA_SECURITY_PROTOCOL="SSL",
            KEYLEDGER_KAFKA_SSL_CAFILE=str(broker.ca.cafile),
            KEYLEDGER_KAFKA_IDEMPOTENCE="off",  # the embedded broker has none
            KEYLEDGER_DETECT_SESSION_TIMEOUT_MS="2000",
            KEYLEDGER_LOG_LEVEL="info",
        )
        with serve(env, log=tmp_path / "serve.log") as base:
            client = cli_json(env, "clients", "register", "--name", "job", "--scope", "a")
            log = tmp_path / "detect.log"
            with log.open("wb") as out:
                detector = subprocess.Popen([KEYLEDGER, "detect"], env=env, stdout=out, stderr=out)
                try:
                    form = {
                        "grant_type": "client_credentials",
                        "client_id": client["client_id"],
                        "client_secret": "kl_secret_guess",
                    }
                    with httpx.Client(base_url=base) as http:
                        statuses = {
                            http.post("/oauth2/token", data=form).status_code for _ in range(25)
                        }
                    assert statuses == {401, 429}
                    security = KafkaSecurity("SSL", ssl_cafile=str(broker.ca.cafile))
                    alerts = asyncio.run(
                        consume(
                            bootstrap,
                            "keyledger.alerts.v1",
                            lambda rs: bool(rs),
                            30,
                            **security.client_kwargs(),
                        )
                    )
                finally:
                    detector.send_signal(signal.SIGTERM)
                    detector.wait(timeout=20)
        audit_lines = security_team("audit_consumer.py", bootstrap, broker.ca.cafile)
        alert_lines = security_team("alerts_consumer.py", bootstrap, broker.ca.cafile)
        stunnel_log = broker.stunnel_log.read_text()
    assert [(r.message["data"]["rule"], r.key) for r in alerts] == [
        ("brute_force", client["client_id"])
    ], log.read_text()
    lines = [json.loads(line) for line in (tmp_path / "serve.log").read_text().splitlines()]
    kafka_errors = [
        line
        for line in lines
        if line["level"] in ("warning", "error")
        and (line["logger"].startswith(("aiokafka", "adapters.kafka")) or "TLS" in line["event"])
    ]
    assert kafka_errors == []
    assert "connected remote server" in stunnel_log
    assert any("AUTHENTICATION FAILED" in line and "job" in line for line in audit_lines)
    assert [line.split()[2] for line in alert_lines] == ["brute_force"]
