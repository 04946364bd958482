"""Prometheus metrics (prometheus-client): what an operator alerts on.

Names follow Prometheus's conventions: the `keyledger_` prefix, base units (`_seconds`),
`_total` on counters, no `_created` series (`configure()` turns them off at start).

Label values are bounded: OAuth error codes and authentication-failure reasons are fixed
sets, routes are templates (`/admin/clients/{client_id:str}`, never a raw path), status is a
code the server itself sends, and a client id is a label only for the clients
`ClientLabels` admits (KEYLEDGER_METRICS_CLIENT_LABELS); every other registered client is
`other`, anything else `unregistered`.

Under `keyledger serve` (workers and its background process) the values live in files under
`PROMETHEUS_MULTIPROC_DIR` (`adapters/metrics_directory.py`) and every scrape, on whichever
worker answers, adds them up. Gauges about the whole installation (projection and
relay lag, the signing key) are computed at scrape time by the process answering.
"""

from __future__ import annotations

import contextlib
import glob
import os
import platform
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from importlib import metadata
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_PLAIN_0_0_4,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
    generate_latest,
    multiprocess,
    start_http_server,
)
from prometheus_client import values as _values
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from adapters.metrics_directory import MULTIPROC_ENV

CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4  # what generate_latest writes (0.26 says 1.0.0)
UNREGISTERED = "unregistered"
OTHER = "other"


class _ProcessId:
    """This process's id, kept instead of asked for: in multiprocess mode prometheus-client
    calls `os.getpid()` on every increment to notice a fork, a system call that was most of an
    increment's cost (four or five per token). A fork still changes it, in the child."""

    def __init__(self) -> None:
        self.value = os.getpid()
        os.register_at_fork(after_in_child=self._forked)

    def _forked(self) -> None:
        self.value = os.getpid()

    def __call__(self) -> int:
        return self.value


if os.environ.get(MULTIPROC_ENV):  # before the first metric below keeps a value
    _values.ValueClass = _values.MultiProcessValue(_ProcessId())  # type: ignore[no-untyped-call]

TOKENS_ISSUED = Counter(
    "keyledger_tokens_issued_total", "Access tokens issued, by client", ["client_id"]
)
OAUTH_ERRORS = Counter(
    "keyledger_oauth_errors_total",
    "Error answers of the OAuth endpoints: route, RFC 6749 error code, client",
    ["route", "error", "client_id"],
)
AUTHENTICATION_FAILURES = Counter(
    "keyledger_authentication_failures_total",
    "Failed client authentications, by reason (as on the audit topic)",
    ["reason"],
)
REQUEST_SECONDS = Histogram(
    "keyledger_http_request_duration_seconds",
    "HTTP request latency by route template, method and status class (2xx, 4xx, 5xx)",
    ["route", "method", "status"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0),
)
RESPONSES = Counter(
    "keyledger_http_responses_total",
    "HTTP responses by route template, method and status code",
    ["route", "method", "code"],
)
WRITE_BATCH_SIZE = Histogram(
    "keyledger_event_store_write_batch_size",
    "Events committed per event-store write (group commit batches)",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512),
)
WRITE_QUEUE_DEPTH = Gauge(
    "keyledger_event_store_write_queue_depth",
    "Token requests waiting for the group-commit writer (the fullest worker's queue)",
    multiprocess_mode="livemax",
)
WRITE_QUEUE_CAPACITY = Gauge(
    "keyledger_event_store_write_queue_capacity",
    "Requests a worker's write queue holds before answering 503 (KEYLEDGER_WRITE_QUEUE_MAX)",
    multiprocess_mode="livemax",
)
RELAY_PUBLISHED = Counter(
    "keyledger_relay_published_events_total", "Events the audit relay published"
)
RELAY_PUBLISH_ERRORS = Counter(
    "keyledger_relay_publish_errors_total", "Failed audit-relay batches (retried with backoff)"
)
OBSERVATIONS_DROPPED = Counter(
    "keyledger_observations_dropped_total",
    "Security observations dropped because the per-process buffer was full",
)
DETECTOR_MESSAGES = Counter(
    "keyledger_detector_messages_total", "Audit messages the anomaly detector folded"
)
DETECTOR_ALERTS = Counter(
    "keyledger_detector_alerts_total", "Alerts the anomaly detector raised, by rule", ["rule"]
)


@dataclass(frozen=True)
class ClientLabelPolicy:
    """KEYLEDGER_METRICS_CLIENT_LABELS: `off`, `all`, or `top:N` (N from 1 to 1000)."""

    mode: str = "top"
    limit: int = 20

    @classmethod
    def parse(cls, text: str) -> ClientLabelPolicy:
        if text in ("off", "all"):
            return cls(text, 0)
        kind, _, count = text.partition(":")
        if kind == "top" and count.isdigit() and 1 <= int(count) <= 1000:
            return cls("top", int(count))
        raise ValueError(f"{text!r} is not off, all or top:N with N from 1 to 1000")


class ClientLabels:
    """Which clients get series of their own, per process.

    `all`: every registered client; `off`: none. `top:N`: at each ranking (every scrape, and
    at least every `rank_every` seconds on the token path) free places go to the clients
    with the most tokens so far that have none yet; a client keeps its place for the life of
    the process, since a counter that moved between series would jump. So at most N clients
    per process have series; the others' tokens count under `other`.
    """

    def __init__(self, policy: ClientLabelPolicy, rank_every: float = 60.0) -> None:
        self.policy = policy
        self._rank_every = rank_every
        self._admitted: frozenset[str] = frozenset()  # replaced whole: read without a lock
        self._waiting: dict[str, int] = {}
        self._lock = threading.Lock()  # the token path (event loop) and a scrape (a thread)
        self._next_rank = time.monotonic() + rank_every

    def of(self, client_id: str) -> str:
        """The label of a registered client."""
        if self.policy.mode == "all" or client_id in self._admitted:
            return client_id
        return OTHER

    def issued(self, client_id: str) -> str:
        """The label of a registered client that just got a token, counted for ranking."""
        if self.policy.mode == "all" or client_id in self._admitted:
            return client_id
        if self.policy.mode == "off" or len(self._admitted) >= self.policy.limit:
            return OTHER
        with self._lock:
            self._waiting[client_id] = self._waiting.get(client_id, 0) + 1
        if time.monotonic() >= self._next_rank:
            self.rank()
        return self.of(client_id)

    def rank(self) -> None:
        """Give free places to the busiest clients without one (ties: the first seen)."""
        with self._lock:
            self._next_rank = time.monotonic() + self._rank_every
            free = self.policy.limit - len(self._admitted)
            if self.policy.mode != "top" or free <= 0 or not self._waiting:
                return
            ranked = sorted(self._waiting.items(), key=lambda item: -item[1])
            chosen = {client_id for client_id, _ in ranked[:free]}
            self._admitted = self._admitted | chosen
            for client_id in chosen:
                del self._waiting[client_id]
            if len(self._admitted) >= self.policy.limit:
                self._waiting.clear()


CLIENT_LABELS = ClientLabels(ClientLabelPolicy())
_issued_children: dict[str, Any] = {}


def configure(client_labels: ClientLabelPolicy) -> None:
    """Once per process, from the composition root: no `_created` series, and which clients
    get series of their own."""
    global CLIENT_LABELS
    disable_created_metrics()  # type: ignore[no-untyped-call]
    if CLIENT_LABELS.policy != client_labels:
        CLIENT_LABELS = ClientLabels(client_labels)


def start_at_zero(counter: Counter, values: Iterable[str]) -> None:
    """A series for each known label value from the start, so `rate()` sees the first
    increase and dashboards show 0 rather than nothing."""
    for label in values:
        counter.labels(label)


def token_issued(client_id: str) -> None:
    """Count a token of a registered client (one child per label, looked up once)."""
    label = CLIENT_LABELS.issued(client_id)
    child = _issued_children.get(label)
    if child is None:
        child = _issued_children[label] = TOKENS_ISSUED.labels(label)
    child.inc()


def client_label(client_id: str | None) -> str:
    """The `client_id` label of an error answer: a registered client's label, else
    `unregistered` (a made-up id never becomes a label)."""
    return UNREGISTERED if client_id is None else CLIENT_LABELS.of(client_id)


def status_class(status: int) -> str:
    """`2xx`, `4xx`, `5xx`: the histogram's status label (exact codes: RESPONSES)."""
    return f"{status // 100}xx" if 100 <= status <= 599 else "5xx"


class BuildInfo(Collector):
    """`keyledger_build_info{version, python, ...} 1`."""

    def __init__(self, process: str) -> None:
        self._labels = {
            "version": _version("keyledger"),
            "python": platform.python_version(),
            "eventsourcing": _version("eventsourcing"),
            "process": process,
        }

    def collect(self) -> Iterable[GaugeMetricFamily]:
        info = GaugeMetricFamily(
            "keyledger_build_info",
            "keyledger's version, the Python and eventsourcing versions, and the command",
            labels=list(self._labels),
        )
        info.add_metric(list(self._labels.values()), 1)
        yield info


def _version(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "unknown"


class LagCollector(Collector):
    """Projection and relay lag, read when scraped (`status()` gives projection_status rows;
    `relay_only`: the relay's row alone, as `keyledger relay` exports it)."""

    def __init__(
        self, status: Callable[[], Iterable[dict[str, Any]]], relay_only: bool = False
    ) -> None:
        self._status = status
        self._relay_only = relay_only

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
        relay_events = GaugeMetricFamily(
            "keyledger_relay_lag_events", "Events committed but not yet on the audit topic"
        )
        relay_seconds = GaugeMetricFamily(
            "keyledger_relay_lag_seconds",
            "Age of the oldest event committed but not yet on the audit topic (0: none)",
        )
        for row in self._status():
            if row["name"] == "audit-relay":
                relay_events.add_metric([], row["lag_events"])
                relay_seconds.add_metric([], row["lag_seconds"])
            elif self._relay_only:
                continue
            events.add_metric([row["name"]], row["lag_events"])
            seconds.add_metric([row["name"]], row["lag_seconds"])
        if self._relay_only:
            yield from (relay_events, relay_seconds)
        else:
            yield from (events, seconds, relay_events, relay_seconds)


class SigningKeyCollector(Collector):
    """How long the current signing key has signed, and until it hands over; read when
    scraped. `clock()` gives (age, seconds to the hand-over or None), or None without a key."""

    def __init__(self, clock: Callable[[], tuple[float, float | None] | None]) -> None:
        self._clock = clock

    def collect(self) -> Iterable[GaugeMetricFamily]:
        age = GaugeMetricFamily(
            "keyledger_signing_key_age_seconds", "How long the current signing key has signed"
        )
        rotation = GaugeMetricFamily(
            "keyledger_signing_key_rotation_seconds",
            "Seconds until the next key takes over: the scheduled successor's start, else "
            "KEYLEDGER_KEY_ROTATION_DAYS after the current key's (negative: overdue; absent: "
            "no rotation scheduled)",
        )
        found = self._clock()
        if found is not None:
            age.add_metric([], found[0])
            if found[1] is not None:
                rotation.add_metric([], found[1])
        yield from (age, rotation)


class ConsumerLagCollector(Collector):
    """The detector's partitions and consumer lag per partition, read when scraped;
    `state()` gives (partitions held, {partition: lag})."""

    def __init__(self, state: Callable[[], tuple[int, dict[int, int]]]) -> None:
        self._state = state

    def collect(self) -> Iterable[GaugeMetricFamily]:
        held, behind_by = self._state()
        partitions = GaugeMetricFamily(
            "keyledger_detector_partitions",
            "Audit-topic partitions this detector holds in its consumer group (0: not "
            "consuming: the broker or the group is away)",
        )
        partitions.add_metric([], held)
        yield partitions
        lag = GaugeMetricFamily(
            "keyledger_detector_consumer_lag_messages",
            "Audit messages on the partition the detector has not read yet (high watermark "
            "minus position), for the partitions this detector holds",
            labels=["partition"],
        )
        for partition, behind in sorted(behind_by.items()):
            lag.add_metric([str(partition)], behind)
        yield lag


class _WrittenFiles(multiprocess.MultiProcessCollector):
    """prometheus-client's collector of every process's files, without the files a process is
    creating at this moment: empty until it sizes them, they hold no value yet, and reading
    one fails the whole scrape (a scrape as serve's background process starts)."""

    def collect(self) -> Iterable[Any]:
        files = []
        for name in glob.glob(os.path.join(self._path, "*.db")):
            with contextlib.suppress(FileNotFoundError):
                if os.path.getsize(name) >= _HEADER_BYTES:
                    files.append(name)
        merged: Iterable[Any] = self.merge(files, accumulate=True)  # type: ignore[no-untyped-call]
        return merged


_HEADER_BYTES = 8  # a file's used-bytes count and padding, written as it is sized


class _ProcessMetrics(Collector):
    """The metrics this process (or, in multiprocess mode, every process) recorded."""

    def __init__(self, single_worker: bool) -> None:
        self._single_worker = single_worker

    def collect(self) -> Iterable[Any]:
        if os.environ.get(MULTIPROC_ENV):
            registry = CollectorRegistry()
            _WrittenFiles(registry)  # type: ignore[no-untyped-call]
            if self._single_worker:
                # The files add up counters, not a process's memory or CPU: those (process_*,
                # python_*) come from the one worker answering, and only when it is the one.
                ProcessCollector(registry=registry)
                PlatformCollector(registry=registry)
                GCCollector(registry=registry)
            return registry.collect()
        return REGISTRY.collect()


def registry_with(*collectors: Collector, single_worker: bool = False) -> CollectorRegistry:
    """A registry of everything recorded, plus the collectors computed at scrape time;
    `single_worker`: serve has a single request worker (it answers every scrape)."""
    registry = CollectorRegistry()
    registry.register(_ProcessMetrics(single_worker))
    for collector in collectors:
        registry.register(collector)
    return registry


def exposition(*collectors: Collector, single_worker: bool = False) -> bytes:
    """The text a scrape gets (`CONTENT_TYPE`): every process's values, and the collectors'."""
    return generate_latest(registry_with(*collectors, single_worker=single_worker))


class MetricsServer:
    """`GET /metrics` on its own port, for the processes without an HTTP server (`relay`,
    `detect`): prometheus-client's WSGI server on a daemon thread."""

    def __init__(self, host: str, port: int, *collectors: Collector) -> None:
        self._server, self._thread = start_http_server(port, host, registry_with(*collectors))

    @property
    def port(self) -> int:
        return int(self._server.server_port)

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
