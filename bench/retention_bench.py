"""`make bench`: removing a month of expired token events, and what it costs the token rate.

On a fresh PostgreSQL database: `keyledger serve --workers 2` (analytics and the ledger's tree
inside, as by default) with a registered client; `--tokens` token events appended directly in
one month long past retention (January 2024), in batches as the group committer writes them;
once serve's followers have folded them all, the token rate alone (wrk), then `retention run`
started and the same wrk load at once: the archive's writing and verification and the month
table's drop timed apart, and the token rate during the removal beside the rate without it.
"""

from __future__ import annotations

import secrets
import sys
import tempfile
import threading
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg

from adapters.event_store import Ledger
from adapters.postgres_recorder import ensure_token_months
from api.bootstrap import token_retention
from api.settings import Settings
from bench.common import arguments, fresh_database, run_wrk
from bench.token_bench import token_server
from domain.token import IssuedToken, new_jti
from domain.token_periods import TokenPeriod

BATCH = 2000
MONTH = TokenPeriod(2024, 1)


def old_token(n: int, clients: list[str]) -> IssuedToken.Issued:
    issued = MONTH.start + timedelta(seconds=n * 2)  # a million tokens fit in the month
    return IssuedToken.issue(
        jti=new_jti(issued, secrets.token_bytes(10)),
        client_id=clients[n % len(clients)],
        scopes=["invoices:read"],
        audience=["https://api.example.com"],
        issued_at=issued,
        expires_at=issued + timedelta(minutes=5),
        kid="Gx3kP9vQ2mN7rT5wY8zB1cD4fH6jL0sA-_uE3iO9pKq",
        client_version=1,
        secret_generation=1,
        auth_method="client_secret_basic",
        source_ip=f"10.0.{n % 250}.{n % 200 + 1}",
    )


def fill(ledger: Ledger, tokens: int) -> float:
    clients = [str(uuid.uuid4()) for _ in range(20)]
    started = time.perf_counter()
    for start in range(0, tokens, BATCH):
        ledger.append([old_token(n, clients) for n in range(start, min(start + BATCH, tokens))])
    return time.perf_counter() - started


class Timed:
    """Wall time spent in one method of an object, by wrapping it."""

    def __init__(self, owner: Any, name: str) -> None:
        self.seconds = 0.0
        inner = getattr(owner, name)

        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return inner(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - started

        setattr(owner, name, timed)


def main() -> int:
    parser = arguments(__doc__)
    parser.add_argument("--tokens", type=int, default=1_000_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, fresh_database(args.pg) as dsn:
        work = Path(tmp)
        with token_server("retention", dsn, work, args) as (base, script):
            settings = Settings(database_url=dsn, keys_dir=work / "keys", kafka_bootstrap="off")
            ledger = Ledger(dsn)
            try:
                with psycopg.connect(dsn) as conn, conn.cursor() as curs:
                    # the month's own table, as a store running then would have made it
                    ensure_token_months(curs, "public", "keyledger_events", MONTH, months=0)
                filled = fill(ledger, args.tokens)
                runner = token_retention(ledger, settings, work / "archives")
                head = ledger.head()
                waited = time.perf_counter()
                while behind := runner._behind(head):
                    if time.perf_counter() - waited > 900:
                        raise TimeoutError(f"{', '.join(behind)} did not catch up in 15 min")
                    time.sleep(0.5)
                waited = time.perf_counter() - waited
                alone = run_wrk(
                    f"{base}/oauth2/token", script, args.duration, args.connections, args.threads
                )
                archive = Timed(runner._archives, "write")
                verify = Timed(runner._archives, "verify")
                drop = Timed(runner._rows, "remove")
                outcome: list[Any] = []

                def remove() -> None:
                    started = time.perf_counter()
                    outcome.append(runner.run("bench"))
                    outcome.append(time.perf_counter() - started)

                removal = threading.Thread(target=remove)
                removal.start()
                during = run_wrk(
                    f"{base}/oauth2/token", script, args.duration, args.connections, args.threads
                )
                removal.join()
                total = outcome[1]
            finally:
                ledger.close()
        [removed] = outcome[0].removed
        size = (work / "archives" / f"tokens-{MONTH.name}.jsonl.gz").stat().st_size
    print(f"\nretention over {args.tokens:,} expired token events, PostgreSQL, partitioned")
    print(f"appended in {filled:.1f} s; serve's followers past them {waited:.1f} s later")
    print(
        f"removed {removed.removed:,} events of {removed.tokens:,} tokens in {total:.1f} s: "
        f"archive written {archive.seconds:.1f} s, verified {verify.seconds:.1f} s, "
        f"month table dropped {drop.seconds:.2f} s"
    )
    print(f"archive: {size / 1e6:.1f} MB, {size / removed.events:.0f} bytes per event")
    print(
        f"{'wrk -t2 -c32 -d' + str(args.duration) + 's':<24}{'tokens/s':>10}{'p99 ms':>9}"
        f"{'errors':>8}"
    )
    print(f"{'without removal':<24}{alone[0]:>10,.0f}{alone[2]:>9.1f}{alone[3]:>8}")
    print(f"{'during removal':<24}{during[0]:>10,.0f}{during[2]:>9.1f}{during[3]:>8}")
    print(f"during / without = {during[0] / alone[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
