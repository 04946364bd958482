"""Rebuild speed (issue 7): `projections rebuild` over 1,000,000 events in PostgreSQL.

A fresh database gets 200 registered clients and 1,000,000 `TokenIssued` events spread over
30 days (a few of them revoked), written straight to the store. Then, one after the other:

- `rebuild analytics`: folds every one of those events (hour and day buckets, client rows)
  into a fresh table and swaps it in. Target: at least 20,000 events/s.
- `rebuild clients`: the same log, of which it folds only the 200 client events.
- `rebuild analytics --until` the middle of the 30 days: a point-in-time copy, which reads the
  whole log and folds the half before that moment.

    python -m bench.rebuild_bench [--events 1000000] [--pg postgresql://...]
"""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta

from adapters.client_secrets import SecretHasher
from adapters.clock import FixedClock
from adapters.event_store import Ledger
from api.usecases.client_admin import ClientAdmin
from api.usecases.projection_rebuild import RebuildReport, copy_until, rebuild
from bench.common import arguments, fresh_database
from domain.admin_scopes import Admin
from domain.client_settings import ClientSettings
from tests.backlog import issued_event

START = datetime(2026, 10, 1, tzinfo=UTC)
DAYS = 30
CHUNK = 5_000


def fill(dsn: str, events: int, clients: int) -> None:
    ledger = Ledger(dsn)
    try:
        admin = ClientAdmin(ledger, SecretHasher(b"b" * 32), FixedClock(START))
        ids = [
            admin.register(
                ClientSettings.create(name=f"svc-{i}", allowed_scopes=["read", "write"]),
                by=Admin.installation("bench"),
            ).client_id
            for i in range(clients)
        ]
        step = timedelta(days=DAYS) / events
        for start in range(0, events, CHUNK):
            batch = []
            for i in range(start, min(start + CHUNK, events)):
                scopes = ["read"] if i % 3 else ["read", "write"]
                batch.append(issued_event(ids[i % clients], START + step * i, scopes))
            ledger.append(batch)
            if (start // CHUNK) % 20 == 19:
                print(f"filled {start + CHUNK:,} / {events:,}", flush=True)
    finally:
        ledger.close()


def quiet(done: int, head: int) -> None:
    pass


def main() -> int:
    parser = arguments(__doc__)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--clients", type=int, default=200)
    args = parser.parse_args()
    with fresh_database(args.pg) as dsn:
        started = time.perf_counter()
        fill(dsn, args.events, args.clients)
        filled = time.perf_counter() - started
        ledger = Ledger(dsn)
        try:
            reports: list[tuple[str, RebuildReport]] = [
                ("rebuild analytics", rebuild(ledger, "analytics", quiet)),
                ("rebuild clients", rebuild(ledger, "clients", quiet)),
            ]
            middle = START + timedelta(days=DAYS / 2)
            now = START + timedelta(days=DAYS + 1)
            reports.append(
                ("analytics --until mid", copy_until(ledger, "analytics", middle, now, quiet))
            )
            head = ledger.head()
        finally:
            ledger.close()

    print(
        f"\nprojection rebuild, PostgreSQL, {os.cpu_count()} cores: {head:,} events in the log "
        f"(written in {filled:.0f} s)"
    )
    print(f"{'run':<24}{'events folded':>14}{'records':>10}{'seconds':>9}{'events/s':>11}")
    for name, r in reports:
        print(f"{name:<24}{r.events:>14,}{r.records:>10,}{r.seconds:>9.2f}{r.rate:>11,.0f}")
    target = reports[0][1].rate
    print(
        f"analytics rebuild: {target:,.0f} events/s (target 20,000): "
        + ("met" if target >= 20_000 else "MISSED")
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
