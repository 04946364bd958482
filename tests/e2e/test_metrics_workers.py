"""`/metrics` under `keyledger serve --workers 2`: every scrape adds up both workers."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.server import cli_json, environment, free_port, serve


def issued(text: str, client_id: str) -> float:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "keyledger_tokens_issued_total" and sample.labels == {
                "client_id": client_id
            }:
                return sample.value
    return 0.0


def test_every_scrape_counts_the_tokens_of_both_workers(tmp_path: Path) -> None:
    env = environment(
        f"sqlite:///{tmp_path}/k.db",
        tmp_path / "keys",
        free_port(),
        KEYLEDGER_METRICS_CLIENT_LABELS="all",
    )
    with serve(env, "--workers", "2", log=tmp_path / "serve.log") as base:
        client = cli_json(env, "clients", "register", "--name", "job", "--scope", "a")
        time.sleep(1.2)  # both workers' clients models have it within a second
        auth = (client["client_id"], client["client_secret"])
        form = {"grant_type": "client_credentials"}
        for _ in range(40):  # a new connection each: the kernel spreads them over the workers
            with httpx.Client() as fresh:
                assert fresh.post(f"{base}/oauth2/token", data=form, auth=auth).status_code == 200
        scrapes = []
        for _ in range(6):
            with httpx.Client() as fresh:
                scrapes.append(issued(fresh.get(f"{base}/metrics").text, client["client_id"]))
    assert scrapes == [40.0] * 6
