"""Token history for the retention, archive and partition tests: a token builder, a store
with two months past retention at `NOW` and a recent one (the read models that fold token
events caught up), and retention runs over it at a fixed moment."""

from __future__ import annotations

import secrets
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from adapters.clock import FixedClock
from adapters.event_store import Ledger
from adapters.ledger_sources import stored_rows
from api.bootstrap import ledger_tables, token_retention
from api.settings import Settings
from api.usecases.analytics import analytics_follower
from api.usecases.token_retention import TokenRetentionRun
from domain.signing_keys import SigningKeys
from domain.token import IssuedToken, new_jti
from domain.token_periods import TokenPeriod
from projections.tokens import RevokedTokensFollower, RevokedTokensView, revoked_tokens_table

NOW = datetime(2026, 12, 3, 10, 0, tzinfo=UTC)
OLD = [TokenPeriod(2024, 1), TokenPeriod(2024, 2)]  # removable at NOW after 400 days
RECENT = TokenPeriod(2026, 11)  # not before 2027-12


def token(issued_at: datetime, jti: str | None = None) -> IssuedToken:
    """A token issued at `issued_at` to a client of its own (a fresh UUIDv7 jti by default)."""
    return IssuedToken(
        jti=jti or new_jti(issued_at, secrets.token_bytes(10)),
        client_id=str(uuid.uuid4()),
        scopes=["invoices:read"],
        audience=["https://api.example.com"],
        issued_at=issued_at,
        expires_at=issued_at + timedelta(minutes=5),
        kid="Gx3kP9vQ2mN7rT5wY8zB1cD4fH6jL0sA-_uE3iO9pKq",
        client_version=1,
        secret_generation=1,
        auth_method="client_secret_basic",
        source_ip="192.0.2.7",
    )


def tokens_in(period: TokenPeriod, count: int) -> list[IssuedToken]:
    made = [token(period.start + timedelta(hours=5 * n + 1)) for n in range(count)]
    made[0].revoke(now=made[0].issued_at + timedelta(minutes=1), actor="test", reason=None)
    return made


def retention_at(
    ledger: Ledger, settings: Settings, archives: str | Path, now: datetime = NOW
) -> TokenRetentionRun:
    """The retention run as the composition root builds it, going by clocks stopped at `now`
    (this machine's and the database's agree)."""
    stopped = FixedClock(now)
    return token_retention(ledger, settings, archives, clock=stopped, database_clock=stopped)


def followers_catch_up(ledger: Ledger) -> None:
    """The read models that fold token events, as serve keeps them."""
    analytics = analytics_follower(ledger, 1.0)
    analytics.load()
    revoked = RevokedTokensFollower(
        ledger, revoked_tokens_table(ledger.datastore), RevokedTokensView()
    )
    revoked.load()


def fill(ledger: Ledger) -> dict[str, list[IssuedToken]]:
    made = {p.name: tokens_in(p, 6) for p in [*OLD, RECENT]}
    keys = SigningKeys(at=NOW)
    ledger.save(*made[OLD[0].name], keys, *made[OLD[1].name], *made[RECENT.name])
    followers_catch_up(ledger)
    return made


def kept_rows(ledger: Ledger) -> list[tuple[int, str, int]]:
    return [(r[0], str(r[1]), r[2]) for r in stored_rows(ledger_tables(ledger))]
