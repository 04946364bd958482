"""Prometheus metrics (prometheus-client): what an operator alerts on.

Label values are bounded: OAuth error codes and authentication-failure reasons are fixed
sets, endpoints are route templates (`/admin/clients/{client_id:str}`, never a raw path),
and a client id is a label only for a registered client (anything else is `unregistered`).

With several worker processes (`keyledger serve --workers 2`) the values live in files under
`PROMETHEUS_MULTIPROC_DIR` (set by `serve` before the workers start) and every scrape, on
whichever worker answers, adds them up. Gauges about the whole server (projection and relay
lag) are computed at scrape time by the process answering, from the database.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
UNREGISTERED = "unregistered"

TOKENS_ISSUED = Counter("keyledger_tokens_issued", "Access tokens issued, by client", ["client_id"])
OAUTH_ERRORS = Counter(
    "keyledger_oauth_errors",
    "Error answers of the OAuth endpoints: endpoint, RFC 6749 error code, client "
    "(registered clients only)",
    ["endpoint", "error", "client_id"],
)
AUTHENTICATION_FAILURES = Counter(
    "keyledger_authentication_failures",
    "Failed client authentications, by reason (as on the audit topic)",
    ["reason"],
)
REQUEST_SECONDS = Histogram(
    "keyledger_http_request_duration_seconds",
    "HTTP request latency by route template and method",
    ["endpoint", "method"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0),
)
WRITE_BATCH_SIZE = Histogram(
    "keyledger_event_store_write_batch_size",
    "Events committed per event-store write (group commit batches)",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512),
)
RELAY_PUBLISHED = Counter("keyledger_relay_published_events", "Events the audit relay published")
RELAY_PUBLISH_ERRORS = Counter(
    "keyledger_relay_publish_errors", "Failed audit-relay batches (retried with backoff)"
)
OBSERVATIONS_DROPPED = Counter(
    "keyledger_observations_dropped",
    "Security observations dropped because the per-process buffer was full",
)


class LagCollector(Collector):
    """Projection and relay lag, read when scraped (`status()` gives projection_status rows)."""

    def __init__(self, status: Callable[[], Iterable[dict[str, Any]]]) -> None:
        self._status = status

    def collect(self) -> Iterable[GaugeMetricFamily]:
        events = GaugeMetricFamily(
            "keyledger_projection_lag_events",
            "Events a projection (or the audit relay) has yet to fold",
            labels=["projection"],
        )
        seconds = GaugeMetricFamily(
            "keyledger_projection_lag_seconds",
            "Age of the oldest event a projection (or the audit relay) has yet to fold",
            labels=["projection"],
        )
        relay = GaugeMetricFamily(
            "keyledger_relay_lag_events", "Events committed but not yet on the audit topic"
        )
        for row in self._status():
            events.add_metric([row["name"]], row["lag_events"])
            seconds.add_metric([row["name"]], row["lag_seconds"])
            if row["name"] == "audit-relay":
                relay.add_metric([], row["lag_events"])
        yield from (events, seconds, relay)


def exposition(lag: Collector) -> tuple[bytes, str]:
    """The text a scrape gets: every process's values, and the lag gauges."""
    registry = CollectorRegistry()
    registry.register(lag)
    if os.environ.get(MULTIPROC_ENV):
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY) + generate_latest(registry), CONTENT_TYPE_LATEST
