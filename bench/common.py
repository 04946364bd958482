"""What both benchmarks share: arguments, a throwaway database, wrk and its parsing."""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import psycopg


def arguments(description: str | None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
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
    return parser


@contextmanager
def fresh_database(pg: str) -> Iterator[str]:
    """The URL of a new, empty database on the server `pg` names; dropped afterwards."""
    name = f"keyledger_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(pg, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield pg.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with psycopg.connect(pg, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s)", text.strip())
    assert match, text
    return float(match.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[match.group(2)]


def run_wrk(
    url: str, script: Path, duration: int, connections: int, threads: int
) -> tuple[float, float, float, int]:
    """Requests/s, p50 ms, p99 ms and errors (non-2xx plus socket errors) of one wrk run."""
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

    def find(pattern: str) -> str:
        match = re.search(pattern, out, re.MULTILINE)
        if match is None or not re.fullmatch(r"[\d.]+(us|ms|s)?", match.group(1)):
            raise SystemExit(f"unexpected wrk output (looking for {pattern!r}):\n{out}")
        return match.group(1)

    errors = 0
    if non2xx := re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out):
        errors += int(non2xx.group(1))
    if sockets := re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out
    ):
        errors += sum(int(g) for g in sockets.groups())
    return (
        float(find(r"Requests/sec:\s+([\d.]+)")),
        _ms(find(r"^\s+50%\s+(\S+)$")),  # the distribution's lines, not "72.50%" above
        _ms(find(r"^\s+99%\s+(\S+)$")),
        errors,
    )


def await_first_token(base: str, client_id: str, secret: str) -> None:
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
