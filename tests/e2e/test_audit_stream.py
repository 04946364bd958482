"""The audit stream end to end: `keyledger serve` and `keyledger relay` as real processes,
a real broker, and the faults the relay must survive (issue 5, part 6)."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import psycopg

from adapters.event_store import Ledger
from adapters.kafka import EmbeddedBroker
from api.bootstrap import build_relay
from api.settings import Settings
from projections.audit_format import audit_event_id
from tests.backlog import fill
from tests.conftest import free_port
from tests.e2e.server import KEYLEDGER, cli, cli_json, embedded_environment, environment, serve
from tests.kafka import Record, consume, distinct_ids, in_order_per_key
from tests.pg_cluster import LocalCluster

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"
FORMATS = jsonschema.Draft202012Validator.FORMAT_CHECKER


def stored_ids(database_url: str) -> list[str]:
    ledger = Ledger(database_url)
    try:
        return [audit_event_id(ledger.mapper.to_domain_event(n)) for n in ledger.read(0, 10**6)]
    finally:
        ledger.close()


def token_form(client_id: str, secret: str) -> dict[str, str]:
    return {"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret}


def read_topic(bootstrap: str, topic: str, expected: set[str], within: float = 60) -> list[Record]:
    """The topic from the start, until every expected stored-event id has arrived."""
    return asyncio.run(
        consume(bootstrap, topic, lambda rs: expected <= distinct_ids(rs), within=within)
    )


def test_the_whole_topic_validates_and_carries_no_secret(tmp_path: Path) -> None:
    """`make run`'s set-up: no bootstrap, so `serve` starts the embedded broker itself."""
    env, broker_port = embedded_environment(tmp_path)
    with serve(env, log=tmp_path / "serve.log") as base:
        created = cli_json(env, "clients", "register", "--name", "job", "--scope", "a b")
        cid, first_secret = created["client_id"], created["client_secret"]
        rotated = cli_json(env, "clients", "rotate-secret", cid, "--grace", "1h")
        second_secret = rotated["client_secret"]
        token = httpx.post(f"{base}/oauth2/token", data=token_form(cid, second_secret))
        assert token.status_code == 200
        access_token = token.json()["access_token"]
        assert cli(env, "clients", "revoke-previous-secret", cid, "--yes").returncode == 0
        done = cli(env, "clients", "revoke-tokens", cid, "--yes")
        assert done.returncode == 0, done.stderr
        assert cli(env, "clients", "suspend", cid, "--reason", "test").returncode == 0
        for secret in (first_secret, "kl_secret_guess", second_secret):
            response = httpx.post(f"{base}/oauth2/token", data=token_form(cid, secret))
            assert response.status_code == 401
        expected = set(stored_ids(env["KEYLEDGER_DATABASE_URL"]))
        records = asyncio.run(
            consume(
                f"127.0.0.1:{broker_port}",
                "keyledger.audit.v1",
                lambda rs: expected <= distinct_ids(rs) and len(rs) >= len(expected) + 3,
            )
        )
    types = Counter(r.type for r in records)
    assert types["keyledger.security.authentication_failed.v1"] == 3
    assert types["keyledger.token.issued.v1"] == 2  # the job's, and the CLI admin's
    reasons = {
        r.message["data"]["reason"]
        for r in records
        if r.type == "keyledger.security.authentication_failed.v1"
    }
    assert reasons == {"revoked_secret", "wrong_secret", "client_suspended"}
    for record in records:
        text = json.dumps(record.message)
        for secret in (first_secret, second_secret, access_token):
            assert secret not in text
        assert "hmac-sha256" not in text
        assert "secret_hash" not in text
        schema = json.loads((SCHEMAS / f"{record.type}.json").read_text())
        jsonschema.validate(record.message, schema, format_checker=FORMATS)


def test_a_broker_outage_blocks_no_token_and_loses_no_event(
    postgres_url: str, tmp_path: Path
) -> None:
    """Fault (a): 1,000 tokens while the broker is down, then every event arrives."""
    broker_port = free_port()
    env = environment(
        postgres_url,
        tmp_path / "keys",
        free_port(),
        KEYLEDGER_KAFKA_BOOTSTRAP=f"127.0.0.1:{broker_port}",
        KEYLEDGER_RELAY_BACKOFF_MAX="1",
    )
    with serve(env, log=tmp_path / "serve.log") as base:
        clients = [
            cli_json(env, "clients", "register", "--name", f"svc{i}", "--scope", "a")
            for i in range(4)
        ]

        async def issue_all() -> list[int]:
            limits = httpx.Limits(max_connections=16)
            async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30) as http:

                async def one(i: int) -> int:
                    c = clients[i % len(clients)]
                    form = token_form(c["client_id"], c["client_secret"])
                    return (await http.post("/oauth2/token", data=form)).status_code

                return list(await asyncio.gather(*(one(i) for i in range(1000))))

        assert Counter(asyncio.run(issue_all())) == {200: 1000}
        expected = stored_ids(postgres_url)
        # The installation and its first signing key (3), the CLI's admin client and its
        # token (2), clients, tokens.
        assert len(expected) == 3 + 2 + 4 + 1000
        with EmbeddedBroker("127.0.0.1", broker_port) as broker:
            records = read_topic(broker.bootstrap, "keyledger.audit.v1", set(expected))
    stored = [r for r in records if "sequence" in r.message]
    assert distinct_ids(stored) == set(expected)
    issued = [r for r in stored if r.type == "keyledger.token.issued.v1"]
    assert len(distinct_ids(issued)) == 1000 + 1  # and the CLI admin's own token
    assert in_order_per_key(stored)
    assert "retrying" in (tmp_path / "serve.log").read_text()  # it did back off and retry


def relay_position(database_url: str) -> int:
    with psycopg.connect(database_url) as conn:
        try:
            row = conn.execute("SELECT max(position) FROM keyledger_relay_positions").fetchone()
        except psycopg.errors.UndefinedTable:
            return 0
    return int(row[0]) if row and row[0] is not None else 0


def test_a_relay_killed_mid_batch_resumes_without_loss(
    postgres_url: str, tmp_path: Path, broker: EmbeddedBroker
) -> None:
    """Fault (b): SIGKILL while a batch is in flight; the restarted relay misses nothing."""
    backlog = 40_000
    fill(postgres_url, backlog)
    topic = f"audit-{uuid.uuid4().hex[:8]}"
    env = environment(
        postgres_url,
        tmp_path / "keys",
        KEYLEDGER_KAFKA_BOOTSTRAP=broker.bootstrap,
        KEYLEDGER_AUDIT_TOPIC=topic,
        KEYLEDGER_RELAY_BATCH_MAX="500",
    )
    log = (tmp_path / "relay.log").open("wb")
    relay = subprocess.Popen([KEYLEDGER, "relay"], env=env, stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 60
        while relay_position(postgres_url) == 0 and time.monotonic() < deadline:
            time.sleep(0.005)
        relay.send_signal(signal.SIGKILL)
        relay.wait(timeout=10)
    finally:
        if relay.poll() is None:
            relay.kill()
    killed_at = relay_position(postgres_url)
    assert 0 < killed_at < backlog, "killed before the backlog was done"
    restarted = subprocess.Popen([KEYLEDGER, "relay"], env=env, stdout=log, stderr=log)
    try:
        expected = set(stored_ids(postgres_url))
        records = read_topic(broker.bootstrap, topic, expected, within=120)
    finally:
        restarted.send_signal(signal.SIGTERM)
        assert restarted.wait(timeout=20) == 0
        log.close()
    assert distinct_ids(records) == expected
    assert in_order_per_key(records)
    duplicates = len(records) - len(expected)
    assert duplicates <= 500 * 2  # at most what was in flight when it died
    status = json.loads(cli(env, "relay", "status", "--json").stdout)
    assert status == {
        "name": f"audit:{topic}",
        "position": len(expected),  # the backlog and the installation's own 3 events
        "head": len(expected),
        "lag_events": 0,
        "relay_running": False,
    }


def test_the_relay_reconnects_after_postgresql_restarts(broker: EmbeddedBroker) -> None:
    """Fault (c): the store goes away under a running relay and comes back."""
    cluster = LocalCluster()
    cluster.start()
    try:
        asyncio.run(_relay_across_a_restart(cluster, broker))
    finally:
        cluster.stop()
        cluster.remove()


async def _relay_across_a_restart(cluster: LocalCluster, broker: EmbeddedBroker) -> None:
    settings = Settings(
        database_url=cluster.url,
        kafka_bootstrap=broker.bootstrap,
        audit_topic=f"audit-{uuid.uuid4().hex[:8]}",
        relay_backoff_max=0.5,
        follow_interval=0.05,
    )
    fill(cluster.url, 100)
    ledger = Ledger(cluster.url)
    relay = build_relay(settings, ledger)
    task = asyncio.create_task(relay.run())
    try:
        await _wait(lambda: relay.position >= 100)
        await asyncio.to_thread(cluster.stop)
        await _wait(lambda: relay.publish_errors > 0 and not relay.active)
        await asyncio.to_thread(cluster.start)
        await asyncio.to_thread(fill, cluster.url, 100)
        await _wait(lambda: relay.position >= 200, within=30)
    finally:
        relay.stop()
        await task
        ledger.close()
    expected = set(stored_ids(cluster.url))
    records = await consume(broker.bootstrap, settings.audit_topic, lambda rs: len(rs) >= 200)
    assert distinct_ids(records) == expected
    assert len(expected) == 200


async def _wait(condition: Any, within: float = 15) -> None:
    async with asyncio.timeout(within):
        while not condition():  # noqa: ASYNC110 - the relay task makes it true
            await asyncio.sleep(0.05)


def test_the_relay_refuses_to_run_when_kafka_is_off(tmp_path: Path) -> None:
    env = environment(f"sqlite:///{tmp_path}/k.db", tmp_path / "keys")
    done = subprocess.run(
        [KEYLEDGER, "relay"], env=env, capture_output=True, text=True, timeout=30, check=False
    )
    assert done.returncode == 2
    assert "KEYLEDGER_KAFKA_BOOTSTRAP=off" in done.stderr
