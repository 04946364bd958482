"""Tracing end to end (issue 18): `keyledger serve` and `keyledger relay` as real processes
with KEYLEDGER_TRACING=otlp, exporting to a real OTLP/HTTP receiver (tests/otlp_collector.py)
that decodes the protobuf the way a collector does."""

from __future__ import annotations

from pathlib import Path

import httpx

from adapters.kafka import EmbeddedBroker
from tests.e2e.scrape import service, wait_until
from tests.e2e.server import cli_json, environment, free_port, serve
from tests.otlp_collector import Collector, otlp_collector

CALLER_TRACE = "0af7651916cd43dd8448eb211c80319c"
CALLER_SPAN = "b7ad6b7169203331"
COLLECTOR_SECRET = "collector-secret-9c2e"
STEPS = {"keyledger.authenticate", "keyledger.grant", "keyledger.sign", "keyledger.commit_wait"}


def traced_installation(
    tmp_path: Path, broker: EmbeddedBroker, collector: Collector
) -> dict[str, str]:
    return environment(
        f"sqlite:///{tmp_path}/k.db",
        tmp_path / "keys",
        free_port(),
        KEYLEDGER_KAFKA_BOOTSTRAP=broker.bootstrap,
        KEYLEDGER_AUDIT_TOPIC=f"audit-{free_port()}",
        KEYLEDGER_RELAY_IN_SERVE="false",
        KEYLEDGER_LOG_LEVEL="info",
        KEYLEDGER_TRACING="otlp",
        KEYLEDGER_OTLP_ENDPOINT=collector.url,
        KEYLEDGER_OTLP_HEADERS=f"authorization=Bearer%20{COLLECTOR_SECRET}",
    )


def test_serve_and_relay_export_one_story_per_token_to_an_otlp_collector(
    tmp_path: Path, broker: EmbeddedBroker
) -> None:
    with otlp_collector() as collector:
        env = traced_installation(tmp_path, broker, collector)
        with serve(env, log=tmp_path / "serve.log") as base:
            client = cli_json(env, "clients", "register", "--name", "job", "--scope", "a")
            wait_until(
                lambda: (
                    httpx.post(
                        f"{base}/oauth2/token",
                        data={"grant_type": "client_credentials"},
                        auth=(client["client_id"], client["client_secret"]),
                        headers={"traceparent": f"00-{CALLER_TRACE}-{CALLER_SPAN}-01"},
                    ).status_code
                    == 200
                ),
                within=5,
                what="a token",
            )
            with service(env, "relay", tmp_path / "relay.log"):
                wait_until(
                    lambda: any(
                        s.resource["keyledger.process"] == "relay" for s in collector.spans
                    ),
                    within=30,
                    what="the relay's spans",
                )
        # Stopping serve exported what its batch processor still held.
        story = collector.of_trace(CALLER_TRACE)
        [request] = [s for s in story if s.name == "POST /oauth2/token"]
        assert request.parent_span_id == CALLER_SPAN
        assert request.resource["service.name"] == "keyledger"
        assert request.resource["keyledger.process"] == "serve"
        assert request.attributes["http.response.status_code"] == 200
        steps = {s.name: s for s in story if s.parent_span_id == request.span_id}
        assert set(steps) == STEPS
        event_id = steps["keyledger.commit_wait"].attributes["cloudevents.event_id"]
        published = [
            s
            for s in collector.spans
            if s.attributes.get("cloudevents.event_id") == event_id and s.name.startswith("publish")
        ]
        assert published, "the relay's publish span for the token's event"
        assert published[0].resource["keyledger.process"] == "relay"
        assert all(
            h.get("authorization") == f"Bearer {COLLECTOR_SECRET}" for h in collector.headers
        )
    for log in ("serve.log", "relay.log"):
        assert COLLECTOR_SECRET not in (tmp_path / log).read_text(), log
