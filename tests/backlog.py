"""A backlog of `TokenIssued` events written straight to the store (tests and benchmarks)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from adapters.event_store import Ledger
from domain.token import IssuedToken

CHUNK = 2000


def issued_event(
    client_id: str, now: datetime, scopes: list[str] | None = None, jti: str | None = None
) -> IssuedToken.Issued:
    """One `TokenIssued` event of a client (scope `a` unless given), valid for an hour."""
    return IssuedToken.issue(
        jti=jti or str(uuid.uuid4()),
        client_id=client_id,
        scopes=scopes or ["a"],
        audience=["https://api.example"],
        issued_at=now,
        expires_at=now + timedelta(hours=1),
        kid="k",
        client_version=1,
        secret_generation=1,
        auth_method="client_secret_basic",
    )


def fill(database_url: str, tokens: int, clients: int = 7) -> None:
    """Append `tokens` issued-token events for `clients` clients, in chunks of 2,000."""
    ledger = Ledger(database_url)
    now = datetime.now(UTC).replace(microsecond=0)
    try:
        for start in range(0, tokens, CHUNK):
            ledger.append(
                [
                    issued_event(f"client-{i % clients}", now)
                    for i in range(start, min(start + CHUNK, tokens))
                ]
            )
    finally:
        ledger.close()
