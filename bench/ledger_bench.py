"""The verifiable ledger (issue 16), on PostgreSQL.

1. Tree integration over a backlog: a fresh database gets `--events` (1,000,000) token events
   written straight to the store; the ledger builder folds all of them into its tiles.
   Target: at least 50,000 events/s. Then `ledger verify` recomputes the whole tree.
2. Token throughput with the ledger running in serve (checkpoints every 5 s) beside the same
   server with it off, alternating runs. Target: on / off >= 0.95.

    python -m bench.ledger_bench [--events 1000000] [--duration 15] [--rounds 2]
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

from adapters.event_store import Ledger
from adapters.ledger_signer import ed25519_verify
from adapters.ledger_sources import StoreEntries
from api.bootstrap import ledger_tables
from api.usecases.ledger_verification import verify_ledger
from bench.common import arguments, fresh_database
from bench.token_bench import Result, bench_variant
from projections.ledger import LedgerBuilder
from tests.backlog import fill


def integration(dsn: str, events: int) -> tuple[float, float]:
    """Seconds to fold the backlog into the tree, and to verify it again from the store."""
    print(f"filling {events:,} events ...", flush=True)
    fill(dsn, events)
    ledger = Ledger(dsn)
    try:
        tables = ledger_tables(ledger)
        tables.create()
        builder = LedgerBuilder(tables)
        started = time.perf_counter()
        folded = builder.catch_up()
        built = time.perf_counter() - started
        assert folded == events, (folded, events)
        started = time.perf_counter()
        report = verify_ledger(StoreEntries(tables), [], [], ed25519_verify, tables)
        verified = time.perf_counter() - started
        assert report.difference is None
        assert report.events == events
    finally:
        ledger.close()
    return built, verified


def main() -> int:
    parser = arguments(__doc__)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    with fresh_database(args.pg) as dsn:
        built, verified = integration(dsn, args.events)
    rate = args.events / built
    runs: dict[str, list[Result]] = {"ledger-off": [], "ledger-on": []}
    with tempfile.TemporaryDirectory() as tmp:
        for round_ in range(args.rounds):
            for label, value in (("ledger-off", "false"), ("ledger-on", "true")):
                with fresh_database(args.pg) as dsn:
                    work = Path(tmp) / f"{label}-{round_}"
                    work.mkdir()
                    runs[label].append(
                        bench_variant(
                            label,
                            dsn,
                            work,
                            args,
                            KEYLEDGER_LEDGER_IN_SERVE=value,
                            KEYLEDGER_LEDGER_CHECKPOINT_INTERVAL="5",
                        )
                    )
    print(f"\nledger integration: {args.events:,} events in {built:.1f} s = {rate:,.0f} events/s")
    print(f"ledger verify (recompute from the store): {args.events / verified:,.0f} events/s")
    print(
        f"POST /oauth2/token, wrk -t{args.threads} -c{args.connections} -d{args.duration}s, "
        f"serve --workers {args.workers}, PostgreSQL, alternating"
    )
    for label, results in runs.items():
        rps = ", ".join(f"{r.rps:,.0f}" for r in results)
        p99 = ", ".join(f"{r.p99_ms:.1f}" for r in results)
        print(f"{label:<12} tokens/s {rps}  p99 ms {p99}")
    on = statistics.mean(r.rps for r in runs["ledger-on"])
    off = statistics.mean(r.rps for r in runs["ledger-off"])
    print(f"ledger on / off = {on / off:.2f} (target >= 0.95); integration target >= 50,000/s")
    errors = sum(r.errors for results in runs.values() for r in results)
    return 0 if errors == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
