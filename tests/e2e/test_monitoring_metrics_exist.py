"""Every metric a shipped dashboard or alerting rule names is exported, with samples, by
the process it comes from: `keyledger detect` for `keyledger_detector_*`, `keyledger relay`
for its counters, `keyledger serve` for the rest (relay lag included), after one token and
one failed authentication."""

from __future__ import annotations

from pathlib import Path

from adapters.kafka import EmbeddedBroker
from tests.e2e.relay_and_detector import installation
from tests.e2e.scrape import label_values, scrape, wait_until
from tests.monitoring_files import dashboard_expressions, metric_names, rule_expressions

RELAY_PROCESS = {"keyledger_relay_published_events_total", "keyledger_relay_publish_errors_total"}


def names(url: str) -> set[str]:
    return {name for name, _ in scrape(url)}


def test_every_metric_a_dashboard_or_rule_names_is_exported_by_its_process(
    postgres_url: str, tmp_path: Path, broker: EmbeddedBroker
) -> None:
    referenced = {
        name: where
        for where, expr in {**rule_expressions(), **dashboard_expressions()}.items()
        for name in metric_names(expr)
    }
    assert len(referenced) >= 20
    with installation(postgres_url, tmp_path, broker) as running:
        assert running.token() == 200
        assert running.token("kl_secret_wrong") == 401
        wait_until(  # the consumer lag has a sample once the detector holds partitions
            lambda: label_values(
                scrape(running.detector), "keyledger_detector_consumer_lag_messages", "partition"
            ),
            30,
            "the detector joins its group",
        )
        exported = {
            "serve": names(f"{running.base}/metrics"),
            "relay": names(running.relay),
            "detect": names(running.detector),
        }
    missing = []
    for name, where in sorted(referenced.items()):
        process = (
            "detect"
            if name.startswith("keyledger_detector_")
            else "relay"
            if name in RELAY_PROCESS
            else "serve"
        )
        if name not in exported[process]:
            missing.append(f"{name} ({where}) not in `keyledger {process}`'s /metrics")
    assert missing == []
