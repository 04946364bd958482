"""`keyledger relay` and `keyledger detect` serve `GET /metrics` on KEYLEDGER_METRICS_PORT:
their lag drains to zero once they have caught up, as the API's scrape says too."""

from __future__ import annotations

import shutil
import socket
import subprocess
from pathlib import Path

import httpx

from adapters.kafka import EmbeddedBroker
from tests.e2e.relay_and_detector import installation
from tests.e2e.scrape import Samples, label_values, parse, scrape, value, wait_until
from tests.e2e.server import cli, environment, free_port

PARTITIONS = 6  # KEYLEDGER_AUDIT_TOPIC_PARTITIONS' default, with which the relay made the topic


def relay_drained(samples: Samples) -> bool:
    """Nothing waits for the audit topic: no events, and so no age of the oldest."""
    lag = (
        value(samples, "keyledger_relay_lag_events"),
        value(samples, "keyledger_relay_lag_seconds"),
    )
    return lag == (0, 0)


def detector_caught_up(samples: Samples) -> bool:
    lags = label_values(samples, "keyledger_detector_consumer_lag_messages", "partition")
    return (
        value(samples, "keyledger_detector_partitions") == PARTITIONS
        and (value(samples, "keyledger_detector_messages_total") or 0) > 0
        and len(lags) == PARTITIONS
        and all(
            value(samples, "keyledger_detector_consumer_lag_messages", partition=p) == 0
            for p in lags
        )
    )


def lint(text: str) -> str:
    promtool = shutil.which("promtool")
    assert promtool, "make test installs Debian's prometheus package"
    done = subprocess.run(
        [promtool, "check", "metrics"], input=text, capture_output=True, text=True, check=False
    )
    return done.stdout + done.stderr


def test_the_relay_and_the_detector_report_lag_that_drains_to_zero(
    postgres_url: str, tmp_path: Path, broker: EmbeddedBroker
) -> None:
    with installation(postgres_url, tmp_path, broker) as running:
        assert running.token() == 200
        wait_until(lambda: relay_drained(scrape(running.relay)), 30, "the relay drains")
        # the API's scrape reads the same stored position
        wait_until(lambda: relay_drained(scrape(f"{running.base}/metrics")), 10, "API agrees")
        wait_until(lambda: detector_caught_up(scrape(running.detector)), 30, "detector reads")
        relay = httpx.get(running.relay)
        detector = httpx.get(running.detector)
    relayed = parse(relay.text)
    assert (value(relayed, "keyledger_relay_published_events_total") or 0) > 0
    assert value(relayed, "keyledger_build_info", **build_labels(relayed, "relay")) == 1
    detected = parse(detector.text)
    assert value(detected, "keyledger_build_info", **build_labels(detected, "detect")) == 1
    assert value(detected, "keyledger_detector_alerts_total", rule="brute_force") == 0
    for response in (relay, detector):
        assert response.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
        assert "_created" not in response.text
        assert lint(response.text) == ""


def build_labels(samples: Samples, process: str) -> dict[str, str]:
    found = [dict(labels) for name, labels in samples if name == "keyledger_build_info"]
    assert [labels["process"] for labels in found] == [process]
    return found[0]


def test_a_metrics_port_in_use_stops_the_relay_with_one_line_naming_the_setting(
    tmp_path: Path,
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        env = environment(
            f"sqlite:///{tmp_path}/k.db",
            tmp_path / "keys",
            KEYLEDGER_KAFKA_BOOTSTRAP=f"127.0.0.1:{free_port()}",
            KEYLEDGER_METRICS_PORT=str(taken.getsockname()[1]),
        )
        done = cli(env, "relay")
    assert done.returncode != 0
    assert "KEYLEDGER_METRICS_PORT: cannot listen on 127.0.0.1:" in done.stderr
    assert "Traceback" not in done.stderr
