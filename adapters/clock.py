"""The clock ports' adapters: the system clock, PostgreSQL's, and a settable one for tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from psycopg.rows import tuple_row


class SystemClock:
    """Wall-clock time in UTC."""

    def now(self) -> datetime:
        return datetime.now(UTC)


class PostgresClock:
    """The PostgreSQL server's clock (`Ledger.datastore`'s)."""

    def __init__(self, datastore: Any) -> None:
        self._datastore = datastore

    def now(self) -> datetime:
        with self._datastore.transaction(commit=False) as curs:
            curs.row_factory = tuple_row
            curs.execute("SELECT now()")
            found = curs.fetchone()
        assert found is not None  # SELECT now() returns one row
        now: datetime = found[0]
        return now


class FixedClock:
    """A clock that moves only when told to."""

    def __init__(self, now: datetime) -> None:
        self._now = now

    def now(self) -> datetime:
        return self._now

    def advance(self, seconds: float) -> None:
        self._now += timedelta(seconds=seconds)
