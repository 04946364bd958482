"""examples/security-team, run as its README says against a live `keyledger serve`, a real
Kafka-protocol broker and `keyledger detect`."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path

import httpx
from aiokafka import AIOKafkaProducer

from adapters.kafka import EmbeddedBroker
from domain.anomaly_detection import RULES
from projections.audit_format import AUDIT_TYPES, SECURITY_TYPES
from tests.e2e.examples import EXAMPLES, load_example, program, run_setup
from tests.e2e.server import KEYLEDGER, environment, free_port, serve
from tests.kafka import Record, consume

FOLDER = "security-team"


def run_consumer(script: str, bootstrap: str, topic: str, group: str) -> list[str]:
    """The consumer's lines until the topic has been quiet for 3 s."""
    done = subprocess.run(
        [
            *(sys.executable, script, "--bootstrap", bootstrap, "--topic", topic),
            *("--group", group, "--idle-exit", "3", "--session-timeout-ms", "2000"),
        ],
        cwd=EXAMPLES / FOLDER,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


async def publish_again(bootstrap: str, topic: str, record: Record) -> None:
    """What a relay failover does: the same message (same id) on the topic once more."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(
            topic, json.dumps(record.message).encode(), key=record.key.encode()
        )
    finally:
        await producer.stop()


def one_of(kind: str) -> Callable[[list[Record]], bool]:
    return lambda records: any(r.type == kind for r in records)


def test_the_audit_consumer_prints_each_event_once_and_resumes_where_it_stopped(
    tmp_path: Path, broker: EmbeddedBroker
) -> None:
    topic = f"audit-{uuid.uuid4().hex[:8]}"
    env = environment(
        f"sqlite:///{tmp_path}/k.db",
        tmp_path / "keys",
        free_port(),
        KEYLEDGER_KAFKA_BOOTSTRAP=broker.bootstrap,
        KEYLEDGER_AUDIT_TOPIC=topic,
    )
    with serve(env, log=tmp_path / "keyledger.log") as base:
        demo = run_setup(FOLDER, {**env, "KEYLEDGER_URL": base})
        records = asyncio.run(
            consume(broker.bootstrap, topic, one_of("keyledger.security.authentication_failed.v1"))
        )
        issued = next(r for r in records if r.type == "keyledger.token.issued.v1")
        asyncio.run(publish_again(broker.bootstrap, topic, issued))
        group = f"security-{uuid.uuid4().hex[:8]}"
        lines = run_consumer("audit_consumer.py", broker.bootstrap, topic, group)
        again = run_consumer("audit_consumer.py", broker.bootstrap, topic, group)

    short = demo["CLIENT_ID"][:8]
    # The server's first start set the installation up and added its signing key (other keys,
    # so other partitions).
    set_up = ("installation set up", "signing keys started", "SIGNING KEY")
    key_lines = [line for line in lines if any(label in line for label in set_up)]
    assert len(key_lines) == 3
    assert any("SIGNING KEY ADDED" in line for line in key_lines)
    # The CLI's admin client (registered, and its own token) is not the demo's.
    lines = [line for line in lines if line not in key_lines and "cli-admin" not in line]
    by_label = {line.split("  ")[1].strip(): line for line in lines}
    # Events keep their order; an observation is published beside them, not in their order.
    assert len(lines) == 3
    assert [label for label in by_label if label != "AUTHENTICATION FAILED"] == [
        "client registered",
        "token issued",
    ]
    assert f"demo-job ({short}…)  scopes demo:read  by " in by_label["client registered"]
    assert f"scope demo:read  aud {base}  from 127.0.0.1" in by_label["token issued"]
    assert "wrong_secret  from 127.0.0.1  (curl/" in by_label["AUTHENTICATION FAILED"]
    assert not any(demo["CLIENT_SECRET"] in line for line in lines)
    assert again == []  # the group committed its offsets: nothing is printed twice


def test_the_alerts_consumer_prints_the_detectors_brute_force_alert_once(
    tmp_path: Path, broker: EmbeddedBroker
) -> None:
    topics = {"audit": f"audit-{uuid.uuid4().hex[:8]}", "alerts": f"alerts-{uuid.uuid4().hex[:8]}"}
    env = environment(
        f"sqlite:///{tmp_path}/k.db",
        tmp_path / "keys",
        free_port(),
        KEYLEDGER_KAFKA_BOOTSTRAP=broker.bootstrap,
        KEYLEDGER_AUDIT_TOPIC=topics["audit"],
        KEYLEDGER_ALERTS_TOPIC=topics["alerts"],
        KEYLEDGER_DETECT_GROUP=f"detect-{uuid.uuid4().hex[:8]}",
        KEYLEDGER_DETECT_SESSION_TIMEOUT_MS="2000",
    )
    with (
        serve(env, log=tmp_path / "keyledger.log") as base,
        program(FOLDER, KEYLEDGER, "detect", env=env, log=tmp_path / "detect.log", python=False),
    ):
        demo = run_setup(FOLDER, {**env, "KEYLEDGER_URL": base})
        wrong = {"grant_type": "client_credentials", "client_id": demo["CLIENT_ID"]}
        for _ in range(9):  # with the README's one: ten, the default threshold
            reply = httpx.post(f"{base}/oauth2/token", data={**wrong, "client_secret": "guess"})
            assert reply.status_code == 401
        alerts = asyncio.run(consume(broker.bootstrap, topics["alerts"], lambda rs: bool(rs)))
        assert alerts, (tmp_path / "detect.log").read_text()
        asyncio.run(publish_again(broker.bootstrap, topics["alerts"], alerts[0]))
        lines = run_consumer(
            "alerts_consumer.py", broker.bootstrap, topics["alerts"], f"g-{uuid.uuid4().hex[:8]}"
        )

    assert len(lines) == 1
    assert lines[0].startswith(f"ALERT high   brute_force         client {demo['CLIENT_ID']}: ")
    assert "10 failed authentications in 60 s" in lines[0]
    assert lines[0].endswith("→ check the source IPs; suspend the client if the guesses came close")


def test_the_alerts_consumer_has_a_first_step_for_every_rule() -> None:
    consumer = load_example(FOLDER, "alerts_consumer")
    assert set(consumer.FIRST_STEP) == set(RULES)


def test_the_audit_consumer_has_a_line_for_every_message_type() -> None:
    consumer = load_example(FOLDER, "audit_consumer")
    kinds = {t.removeprefix("keyledger.").removesuffix(".v1") for t in AUDIT_TYPES.values()}
    kinds |= {t.removeprefix("keyledger.").removesuffix(".v1") for t in SECURITY_TYPES.values()}
    assert set(consumer.LINES) == kinds
