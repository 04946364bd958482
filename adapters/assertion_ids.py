"""Single use of client assertions: every `jti` seen, per client, until its assertion expires.

RFC 7523 §3 item 7: "The authorization server MAY ensure that JWTs are not replayed by
maintaining the set of used "jti" values for the length of time for which the JWT would be
considered valid". The set lives in a table beside the event store, so every replica shares
it: one primary key insert decides, atomically, which request used a `jti` first.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from eventsourcing.postgres import PostgresDatastore

from adapters.sqlite_store import schema_missing

TABLE = "keyledger_used_assertions"
_DDL = (
    f"CREATE TABLE IF NOT EXISTS {TABLE} (client_id text NOT NULL, jti text NOT NULL, "
    "expires_at double precision NOT NULL, PRIMARY KEY (client_id, jti))"
)
_INSERT = (
    f"INSERT INTO {TABLE} (client_id, jti, expires_at) VALUES (%s, %s, %s) "  # noqa: S608
    "ON CONFLICT (client_id, jti) DO NOTHING RETURNING jti"
)
_PRUNE = f"DELETE FROM {TABLE} WHERE expires_at < %s"  # noqa: S608 - a constant name


class UsedAssertionIds:
    """`use(client_id, jti, expires_at)` is True once per pair, on any replica."""

    def __init__(
        self,
        datastore: Any,
        *,
        keep_after_expiry: float = 60.0,
        prune_every: float = 60.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._datastore = datastore
        self._postgres = isinstance(datastore, PostgresDatastore)
        table = f"{datastore.schema}.{TABLE}" if self._postgres and datastore.schema else TABLE
        self._table = table
        self._insert, self._prune, ddl = (
            sql.replace(TABLE, table) if self._postgres else sql.replace("%s", "?")
            for sql in (_INSERT, _PRUNE, _DDL)
        )
        # Kept past expiry by the leeway the verifier allows on `exp`.
        self._keep_after_expiry = keep_after_expiry
        self._prune_every = prune_every
        self._monotonic = monotonic
        self._pruned_at = monotonic()
        if schema_missing(datastore, TABLE):  # no wait for SQLite's write lock once made
            with datastore.transaction(commit=True) as curs:
                curs.execute(ddl)

    def use(self, client_id: str, jti: str, expires_at: datetime, now: datetime) -> bool:
        """Record this assertion's use; False when it was used before (a replay)."""
        with self._datastore.transaction(commit=True) as curs:
            curs.execute(self._insert, (client_id, jti, expires_at.timestamp()))
            first = bool(curs.fetchall())
            moment = self._monotonic()
            if moment - self._pruned_at >= self._prune_every:
                self._pruned_at = moment
                curs.execute(self._prune, (now.timestamp() - self._keep_after_expiry,))
        return first

    def count(self) -> int:
        """How many uses are remembered (expired ones go at the next prune)."""
        with self._datastore.transaction(commit=False) as curs:
            curs.execute(f"SELECT count(*) AS n FROM {self._table}")  # noqa: S608
            row = curs.fetchone()
        return int(row["n"] if isinstance(row, dict) else row[0])
