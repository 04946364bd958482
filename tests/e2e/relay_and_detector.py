"""An installation in production shape for the metrics tests: `keyledger serve` (relay off),
`keyledger relay` and `keyledger detect`, each scraped, against the embedded broker."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from adapters.kafka import EmbeddedBroker
from tests.e2e.scrape import service
from tests.e2e.server import cli_json, environment, free_port, serve


@dataclass(frozen=True)
class Installation:
    base: str  # the API's URL; its metrics at base + /metrics
    relay: str  # the relay's metrics URL
    detector: str  # the detector's metrics URL
    client: tuple[str, str]

    def token(self, secret: str | None = None) -> int:
        auth = (self.client[0], secret or self.client[1])
        form = {"grant_type": "client_credentials"}
        return httpx.post(f"{self.base}/oauth2/token", data=form, auth=auth).status_code


@contextmanager
def installation(
    postgres_url: str, tmp_path: Path, broker: EmbeddedBroker
) -> Iterator[Installation]:
    env = environment(
        postgres_url,
        tmp_path / "keys",
        free_port(),
        KEYLEDGER_KAFKA_BOOTSTRAP=broker.bootstrap,
        KEYLEDGER_AUDIT_TOPIC=f"audit-{free_port()}",
        KEYLEDGER_ALERTS_TOPIC=f"alerts-{free_port()}",
        KEYLEDGER_DETECT_GROUP=f"detect-{free_port()}",
        KEYLEDGER_DETECT_SESSION_TIMEOUT_MS="2000",
        KEYLEDGER_RELAY_IN_SERVE="false",
    )
    with ExitStack() as running:
        base = running.enter_context(serve(env, log=tmp_path / "serve.log"))
        client = cli_json(env, "clients", "register", "--name", "job", "--scope", "a")
        relay = running.enter_context(service(env, "relay", tmp_path / "relay.log"))
        detector = running.enter_context(service(env, "detect", tmp_path / "detect.log"))
        time.sleep(1.2)  # DESIGN.md invariant 2: the server's clients model has it within 1 s
        yield Installation(base, relay, detector, (client["client_id"], client["client_secret"]))
