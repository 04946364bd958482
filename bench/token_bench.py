"""`make bench`: durable token issuance on PostgreSQL, beside the same server without the write.

Starts `keyledger serve` on a fresh PostgreSQL database, registers a client with the CLI,
drives POST /oauth2/token with wrk (a separate process) and prints tokens/s, p50 and p99 for
both variants in one run, then the ratio: the cost of durability.
"""

from __future__ import annotations

import argparse
import base64
import os
import re
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import httpx
import psycopg

from tests.e2e.server import cli_json, environment, free_port, serve

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


def _ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text.strip()).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def run_wrk(
    url: str, script: Path, duration: int, connections: int, threads: int
) -> tuple[float, float, float, int]:
    out = subprocess.run(
        [
            "wrk",
            f"-t{threads}",
            f"-c{connections}",
            f"-d{duration}s",
            "--latency",
            "-s",
            str(script),
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"50%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"99%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    socket_errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out
    )
    errors = int(non2xx.group(1)) if non2xx else 0
    if socket_errors:
        errors += sum(int(g) for g in socket_errors.groups())
    return rps, p50, p99, errors


def _await_first_token(base: str, client_id: str, secret: str) -> None:
    """Every worker must know the client before the load starts (invariant 2: within 1 s)."""
    deadline = time.monotonic() + 5
    ok = 0
    while ok < 20:
        response = httpx.post(
            f"{base}/oauth2/token",
            data={"grant_type": "client_credentials"},
            auth=(client_id, secret),
        )
        ok = ok + 1 if response.status_code == 200 else 0
        if time.monotonic() > deadline:
            raise SystemExit(
                f"the server does not issue tokens: {response.status_code} {response.text}"
            )


def count_issued(dsn: str) -> int:
    with psycopg.connect(dsn) as conn:
        row = conn.execute(
            "SELECT count(*) FROM keyledger_events WHERE topic LIKE %s", ("%IssuedToken.Issued",)
        ).fetchone()
        return int(row[0]) if row else 0


def bench_variant(
    label: str, dsn: str, workdir: Path, args: argparse.Namespace, **extra: str
) -> Result:
    env = environment(
        dsn, workdir / "keys", free_port(), KEYLEDGER_WORKERS=str(args.workers), **extra
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
        _await_first_token(base, created["client_id"], created["client_secret"])
        run_wrk(f"{base}/oauth2/token", script, 3, args.connections, args.threads)  # warm-up
        before = count_issued(dsn)
        rps, p50, p99, errors = run_wrk(
            f"{base}/oauth2/token", script, args.duration, args.connections, args.threads
        )
        stored = count_issued(dsn) - before
    return Result(label, rps, p50, p99, errors, stored)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--duration", type=int, default=15)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--pg",
        default=os.environ.get(
            "KEYLEDGER_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres"
        ),
    )
    args = parser.parse_args()

    name = f"keyledger_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(args.pg, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    dsn = args.pg.rsplit("/", 1)[0] + f"/{name}"
    results: list[Result] = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            results.append(bench_variant("durable", dsn, work, args))
            results.append(
                bench_variant(
                    "no-event-write", dsn, work, args, KEYLEDGER_BENCH_SKIP_EVENT_WRITE="1"
                )
            )
    finally:
        with psycopg.connect(args.pg, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    print(
        f"\nPOST /oauth2/token, wrk -t{args.threads} -c{args.connections} -d{args.duration}s, "
        f"keyledger serve --workers {args.workers}, PostgreSQL, {os.cpu_count()} cores"
    )
    print(f"{'variant':<16}{'tokens/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}{'events':>9}")
    for r in results:
        print(
            f"{r.label:<16}{r.rps:>10.0f}{r.p50_ms:>9.2f}{r.p99_ms:>9.2f}{r.errors:>8}{r.stored!s:>9}"
        )
    durable, bare = results
    print(f"durable / no-event-write = {durable.rps / bare.rps:.2f}")
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
