"""`make bench`: the audit relay, store to broker (issue 5, part 8).

1. Backlog: 100,000 `TokenIssued` events in a fresh PostgreSQL database, then `keyledger
   relay` (a separate process) publishes them to the embedded broker; events/s from its
   first stored position to the last, and the broker's message count.
2. Lag under load: `keyledger serve --workers 2` with the relay inside, driven by wrk at full
   rate. A sampler reads the log's head and the relay's stored position every 20 ms; the lag
   of a sample is the time until the stored position reached that sample's head (so it is
   commit-to-acknowledged, ±20 ms). The same wrk run against the server with Kafka off gives
   the relay's cost to the token endpoint, side by side.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg

from adapters.kafka import EmbeddedBroker
from bench.common import arguments, fresh_database, run_wrk
from bench.token_bench import token_server
from tests.backlog import fill
from tests.e2e.server import KEYLEDGER, environment, free_port
from tests.kafka import consume, distinct_ids

TOPIC = "keyledger.audit.v1"


def head_and_position(conn: psycopg.Connection[tuple[int, ...]]) -> tuple[int, int]:
    head = conn.execute("SELECT coalesce(max(notification_id), 0) FROM keyledger_events")
    (h,) = head.fetchone() or (0,)
    try:
        row = conn.execute("SELECT coalesce(max(position), 0) FROM keyledger_relay_positions")
        (p,) = row.fetchone() or (0,)
    except psycopg.errors.UndefinedTable:
        p = 0
    return int(h), int(p)


def distinct_on_topic(bootstrap: str, expected: int) -> int:
    """Distinct event ids read back from the topic (tansu's end offsets undercount)."""
    records = asyncio.run(consume(bootstrap, TOPIC, lambda rs: len(rs) >= expected, within=120))
    return len(distinct_ids(records))


def backlog(args: argparse.Namespace, work: Path) -> tuple[int, float, float, int]:
    """(events, seconds, events/s, messages on the topic) for the backlog run."""
    with fresh_database(args.pg) as dsn, EmbeddedBroker("127.0.0.1", free_port()) as broker:
        started = time.monotonic()
        fill(dsn, args.events)
        print(f"filled {args.events} events in {time.monotonic() - started:.1f} s", flush=True)
        env = environment(dsn, work / "keys", KEYLEDGER_KAFKA_BOOTSTRAP=broker.bootstrap)
        log = (work / "relay.log").open("wb")
        relay = subprocess.Popen([KEYLEDGER, "relay"], env=env, stdout=log, stderr=log)
        try:
            with psycopg.connect(dsn, autocommit=True) as conn:
                first = done = None
                deadline = time.monotonic() + 600
                while time.monotonic() < deadline:
                    _, position = head_and_position(conn)
                    now = time.monotonic()
                    if position > 0 and first is None:
                        first = (now, position)
                    if position >= args.events:
                        done = now
                        break
                    time.sleep(0.01)
            if first is None or done is None:
                raise SystemExit("the relay did not finish the backlog in 10 minutes")
        finally:
            relay.send_signal(signal.SIGTERM)
            relay.wait(timeout=30)
            log.close()
        seconds = done - first[0]
        rate = (args.events - first[1]) / seconds
        return args.events, seconds, rate, distinct_on_topic(broker.bootstrap, args.events)


@dataclass
class LoadResult:
    label: str
    rps: float
    p99_ms: float
    errors: int
    lags_ms: list[float]


class Sampler(threading.Thread):
    """(time, head, stored position) every 20 ms until stopped."""

    def __init__(self, dsn: str) -> None:
        super().__init__(daemon=True)
        self.dsn = dsn
        self.samples: list[tuple[float, int, int]] = []
        self.stopping = threading.Event()

    def run(self) -> None:
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            while not self.stopping.wait(0.02):
                head, position = head_and_position(conn)
                self.samples.append((time.monotonic(), head, position))

    def lags_ms(self) -> list[float]:
        """For each sample, how long until the stored position reached its head."""
        lags = []
        j = 0
        for i, (t, head, _) in enumerate(self.samples):
            j = max(j, i)
            while j < len(self.samples) and self.samples[j][2] < head:
                j += 1
            if j == len(self.samples):
                break  # never caught up within the run: counted below as unfinished
            lags.append((self.samples[j][0] - t) * 1000)
        return lags


def under_load(label: str, args: argparse.Namespace, work: Path, kafka: str) -> LoadResult:
    with (
        fresh_database(args.pg) as dsn,
        token_server(label, dsn, work, args, KEYLEDGER_KAFKA_BOOTSTRAP=kafka) as (base, script),
    ):
        sampler = Sampler(dsn)
        sampler.start()
        rps, _, p99, errors = run_wrk(
            f"{base}/oauth2/token", script, args.duration, args.connections, args.threads
        )
        if kafka != "off":
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                if sampler.samples and sampler.samples[-1][2] >= sampler.samples[-1][1]:
                    break
                time.sleep(0.1)
        sampler.stopping.set()
        sampler.join()
    return LoadResult(label, rps, p99, errors, sampler.lags_ms() if kafka != "off" else [])


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=1000)[int(q * 1000) - 1] if len(values) > 1 else 0.0


def main() -> int:
    parser = arguments(__doc__)
    parser.add_argument("--events", type=int, default=100_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        events, seconds, rate, on_topic = backlog(args, work)
        with EmbeddedBroker("127.0.0.1", free_port()) as broker:
            relayed = under_load("relay-on", args, work, broker.bootstrap)
        bare = under_load("kafka-off", args, work, "off")

    print(f"\naudit relay, PostgreSQL -> embedded broker (tansu), {os.cpu_count()} cores")
    print(
        f"backlog: {events} events in {seconds:.2f} s = {rate:,.0f} events/s; "
        f"{on_topic} distinct event ids read back from the topic"
    )
    lags = relayed.lags_ms
    print(
        f"under load (wrk -t{args.threads} -c{args.connections} -d{args.duration}s, "
        f"serve --workers {args.workers}, relay in serve):"
    )
    print(f"{'variant':<11}{'tokens/s':>10}{'p99 ms':>9}{'errors':>8}")
    for r in (relayed, bare):
        print(f"{r.label:<11}{r.rps:>10.0f}{r.p99_ms:>9.2f}{r.errors:>8}")
    print(f"relay-on / kafka-off = {relayed.rps / bare.rps:.2f}")
    print(
        f"relay lag (commit to broker ack, {len(lags)} samples every 20 ms): "
        f"p50 {percentile(lags, 0.5):.0f} ms, p99 {percentile(lags, 0.99):.0f} ms, "
        f"max {max(lags, default=0):.0f} ms"
    )
    ok = on_topic >= events and relayed.errors == 0 and percentile(lags, 0.99) < 1000
    if not ok:
        print("WARNING: messages missing, errors, or p99 lag at or over 1 s", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
