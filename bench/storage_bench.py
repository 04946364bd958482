"""`make bench`: what one token event costs on PostgreSQL, in each stored format (issue 17).

Appends `--tokens` `IssuedToken.Issued` events shaped as the token endpoint writes them (a
UUIDv7 jti, a UUID client id, one scope, one audience, the store's signing key as kid, an
IPv4 source), in batches as the group committer does, to a fresh database; then VACUUM
ANALYZE and the table's heap, its indexes and the whole relation divided by the number of
events. Format 1 (eventsourcing's JSON, how every event was stored before) is measured on a
tenth of the events beside it, with the random UUIDv4 jti tokens had then.
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta

import psycopg
from eventsourcing.persistence import Mapper

from adapters.event_store import Ledger
from bench.common import fresh_database
from domain.signing_keys import SigningKeys
from domain.token import IssuedToken, new_jti

BATCH = 2000
KID = "Gx3kP9vQ2mN7rT5wY8zB1cD4fH6jL0sA-_uE3iO9pKq"  # a 43-character SHA-256 thumbprint


def token_event(client_id: str, now: datetime, n: int, json_format: bool) -> IssuedToken.Issued:
    return IssuedToken.issue(
        jti=str(uuid.uuid4()) if json_format else new_jti(now, secrets.token_bytes(10)),
        client_id=client_id,
        scopes=["invoices:read"],
        audience=["https://api.example.com"],
        issued_at=now,
        expires_at=now + timedelta(seconds=300),
        kid=KID,
        client_version=3,
        secret_generation=2,
        auth_method="client_secret_basic",
        source_ip=f"10.0.{n % 250}.{n % 200 + 1}",
    )


def fill(dsn: str, tokens: int, json_format: bool) -> float:
    """Append `tokens` events; the seconds it took."""
    ledger = Ledger(dsn)
    if json_format:  # eventsourcing's own mapper: format 1
        ledger.mapper = Mapper(transcoder=ledger.construct_transcoder())
        ledger.events.mapper = ledger.mapper
    started_at = datetime.now(UTC)
    keys = SigningKeys(at=started_at)
    keys.add_key(
        kid=KID,
        alg="ES256",
        public_jwk={"kty": "EC", "kid": KID},
        sealed_private_key="sealed",
        activates_at=started_at,
        now=started_at,
        actor="bench",
    )
    ledger.save(keys)
    ledger.get_signing_keys()  # read back, as a server's signer does: the kid is numbered
    clients = [str(uuid.uuid4()) for _ in range(20)]
    started = time.perf_counter()
    try:
        for start in range(0, tokens, BATCH):
            now = datetime.now(UTC)
            ledger.append(
                [
                    token_event(clients[n % len(clients)], now, n, json_format)
                    for n in range(start, min(start + BATCH, tokens))
                ]
            )
    finally:
        ledger.close()
    return time.perf_counter() - started


def sizes(dsn: str) -> tuple[int, float, float, float]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE keyledger_events")
        counted = conn.execute("SELECT count(*) FROM keyledger_events").fetchone()
        row = conn.execute(  # every table of the partitioned store (or the single table)
            "SELECT sum(pg_relation_size(relid)), sum(pg_indexes_size(relid)), "
            "sum(pg_total_relation_size(relid)) "
            "FROM pg_partition_tree('keyledger_events') WHERE isleaf"
        ).fetchone()
    assert row is not None
    assert counted is not None
    count = int(counted[0])
    return count, row[0] / count, row[1] / count, row[2] / count


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tokens", type=int, default=1_000_000)
    parser.add_argument(
        "--pg",
        default=os.environ.get(
            "KEYLEDGER_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres"
        ),
    )
    args = parser.parse_args()
    rows = []
    for label, tokens, json_format in (
        ("compact (ti2)", args.tokens, False),
        ("JSON (format 1)", max(args.tokens // 10, BATCH), True),
    ):
        with fresh_database(args.pg) as dsn:
            Ledger(dsn).close()  # the tables
            seconds = fill(dsn, tokens, json_format)
            rows.append((label, *sizes(dsn), tokens / seconds))
    print(f"\ntoken events on PostgreSQL, bytes per event ({os.cpu_count()} cores)")
    print(f"{'format':<17}{'events':>11}{'heap':>8}{'indexes':>9}{'total':>8}{'appends/s':>11}")
    for label, count, heap, indexes, total, rate in rows:
        print(f"{label:<17}{count:>11,}{heap:>8.0f}{indexes:>9.0f}{total:>8.0f}{rate:>11,.0f}")
    compact, json = rows[0][4], rows[1][4]
    print(f"compact / JSON = {compact / json:.2f}; target: <= 250 bytes per token event")
    return 0


if __name__ == "__main__":
    sys.exit(main())
