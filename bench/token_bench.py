"""`make bench`: durable token issuance on PostgreSQL, beside the same server without the write.

Starts `keyledger serve` on a fresh PostgreSQL database, registers a client with the CLI,
drives POST /oauth2/token with wrk (a separate process) and prints tokens/s, p50 and p99 for
both variants in one run, then the ratio: the cost of durability.
"""

from __future__ import annotations

import argparse
import base64
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg

from adapters.compact_events import stored_topics
from adapters.tracing import NoTracing
from bench.common import arguments, await_first_token, fresh_database, run_wrk
from domain.token import IssuedToken
from tests.e2e.server import cli_json, environment, free_port, serve
from tests.otlp_collector import otlp_collector

INSTALL = (
    "from api.bootstrap import prepare; from api.settings import Settings; "
    "prepare(Settings.from_env(), create=True)"
)
LUA = """
wrk.method = "POST"
wrk.body = "grant_type=client_credentials&scope=invoices:read"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Authorization"] = "Basic {auth}"
"""


@dataclass
class Result:
    label: str
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    stored: int | None


def count_issued(dsn: str) -> int:
    with psycopg.connect(dsn) as conn:
        row = conn.execute(
            "SELECT count(*) FROM keyledger_events WHERE topic = ANY(%s)",
            (list(stored_topics(IssuedToken.Issued)),),
        ).fetchone()
        return int(row[0]) if row else 0


@contextmanager
def token_server(
    label: str, dsn: str, workdir: Path, args: argparse.Namespace, **extra: str
) -> Iterator[tuple[str, Path]]:
    """`serve` on `dsn` with a registered client, warmed up: its URL and the wrk script.
    With PYTHONPATH in `extra` (another commit's tree), that tree also sets the store up, so
    the tables are the ones its own code makes."""
    other_tree = "PYTHONPATH" in extra
    env = environment(
        dsn,
        workdir / "keys",
        free_port(),
        install=not other_tree,
        KEYLEDGER_WORKERS=str(args.workers),
        **extra,
    )
    if other_tree:
        subprocess.run(  # from that tree: `-c` puts the working directory first on the path
            [sys.executable, "-c", INSTALL],
            env=env,
            cwd=extra["PYTHONPATH"],
            check=True,
            capture_output=True,
            timeout=120,
        )
    with serve(env, log=workdir / f"{label}.log") as base:
        created = cli_json(
            env, "clients", "register", "--name", "bench", "--scope", "invoices:read"
        )
        auth = base64.b64encode(
            f"{created['client_id']}:{created['client_secret']}".encode()
        ).decode()
        script = workdir / "token.lua"
        script.write_text(LUA.format(auth=auth))
        await_first_token(base, created["client_id"], created["client_secret"])
        run_wrk(f"{base}/oauth2/token", script, 3, args.connections, args.threads)  # warm-up
        yield base, script


def bench_variant(
    label: str, dsn: str, workdir: Path, args: argparse.Namespace, **extra: str
) -> Result:
    with token_server(label, dsn, workdir, args, **extra) as (base, script):
        before = count_issued(dsn)
        rps, p50, p99, errors = run_wrk(
            f"{base}/oauth2/token", script, args.duration, args.connections, args.threads
        )
        stored = count_issued(dsn) - before
    return Result(label, rps, p50, p99, errors, stored)


def tracing_off_cost(rounds: int = 200_000) -> float:
    """Seconds per token that tracing off adds: the issuer's four spans, as it opens them."""
    tracer = NoTracing()
    started = time.perf_counter()
    for _ in range(rounds):
        with tracer.span("keyledger.authenticate") as span:
            span.set_attribute("keyledger.auth_method", "client_secret_basic")
            span.set_attribute("oauth.client_id", "c")
        with tracer.span("keyledger.grant"):
            pass
        with tracer.span("keyledger.sign") as span:
            span.set_attribute("keyledger.kid", "k")
        with tracer.span("keyledger.commit_wait") as span:
            span.is_recording()
    return (time.perf_counter() - started) / rounds


def main() -> int:
    args = arguments(__doc__).parse_args()
    results: list[Result] = []
    with fresh_database(args.pg) as dsn, tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        results.append(bench_variant("durable", dsn, work, args))
        results.append(
            bench_variant("no-event-write", dsn, work, args, KEYLEDGER_BENCH_SKIP_EVENT_WRITE="1")
        )
        results.append(bench_variant("no-access-log", dsn, work, args, KEYLEDGER_ACCESS_LOG="0"))
        # A real OTLP/HTTP receiver that only counts (a collector runs elsewhere in production).
        with otlp_collector(decode=False) as collector:
            for label, ratio in (("tracing-on", "1.0"), ("tracing-10%", "0.1")):
                results.append(
                    bench_variant(
                        label,
                        dsn,
                        work,
                        args,
                        KEYLEDGER_TRACING="otlp",
                        KEYLEDGER_OTLP_ENDPOINT=collector.url,
                        KEYLEDGER_TRACE_SAMPLE_RATIO=ratio,
                    )
                )
            exported = collector.received_bytes

    print(
        f"\nPOST /oauth2/token, wrk -t{args.threads} -c{args.connections} -d{args.duration}s, "
        f"keyledger serve --workers {args.workers}, PostgreSQL, {os.cpu_count()} cores"
    )
    print(f"{'variant':<16}{'tokens/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}{'events':>9}")
    for r in results:
        print(
            f"{r.label:<16}{r.rps:>10.0f}{r.p50_ms:>9.2f}{r.p99_ms:>9.2f}{r.errors:>8}{r.stored!s:>9}"
        )
    durable, bare, quiet, traced, sampled = results
    print(f"durable / no-event-write = {durable.rps / bare.rps:.2f}")
    print(f"durable with / without the access log = {durable.rps / quiet.rps:.2f}")
    print(
        f"tracing on / off = {traced.rps / durable.rps:.2f}, sampling 10% / off = "
        f"{sampled.rps / durable.rps:.2f} ({exported / 1e6:.0f} MB of OTLP exported)"
    )
    off = tracing_off_cost()
    per_token = (os.cpu_count() or 1) / durable.rps
    print(
        f"tracing off: {off * 1e9:.0f} ns per token in its four do-nothing spans, "
        f"{off / per_token:.2%} of a token's share of the machine at the durable rate"
    )
    ok = (
        durable.errors == 0
        and durable.stored is not None
        and durable.stored >= durable.rps * args.duration * 0.9
    )
    if not ok:
        print("WARNING: errors during the run, or fewer stored events than tokens", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
