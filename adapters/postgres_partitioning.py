"""`keyledger retention partition-store`: a PostgreSQL store made before token events were
partitioned (one events table) moved into the partitioned layout (adapters/postgres_recorder.py),
every event at its own position, in one transaction."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from eventsourcing.postgres import PostgresDatastore
from psycopg import Cursor
from psycopg.sql import SQL, Identifier, Literal

from adapters.postgres_recorder import (
    MONTHS_AHEAD,
    SCHEMA_LOCK_KEY,
    ensure_token_months,
    partitioned_layout,
)
from adapters.token_event_rows import kind_sql
from domain.token_periods import TokenPeriod, issued_period


class AlreadyPartitioned(Exception):
    """The store's events table is partitioned already."""


class NoEventsTable(Exception):
    """The database holds no events table: not a keyledger store (a wrong database URL?)."""


def partition_single_table(datastore: PostgresDatastore, table: str) -> int:
    """Move a store made before partitioning to the partitioned layout; the events moved.

    One transaction, under the schema lock and an ACCESS EXCLUSIVE lock on the old table (every
    reader and writer waits until it commits; stop the servers first): the old table and its
    indexes are renamed, the partitioned table is made with month tables from the oldest
    UUIDv7 token to a year ahead, every row is copied at its own position with its kind, the
    position sequence continues after the last one, and the old table is dropped. Any failure
    rolls all of it back."""
    schema = datastore.schema or "public"
    old = f"{table}_before_partitioning"
    with datastore.transaction(commit=True) as curs:
        curs.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK_KEY,))
        curs.execute(
            "SELECT c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = %s AND c.relname = %s",
            (schema, table),
        )
        found = curs.fetchone()
        if found is None:
            raise NoEventsTable(
                f"no table {schema}.{table}: is the database URL a keyledger store?"
            )
        if found["relkind"] == "p":
            raise AlreadyPartitioned(f"{schema}.{table} is partitioned already")
        curs.execute(
            SQL("LOCK TABLE {t} IN ACCESS EXCLUSIVE MODE").format(t=Identifier(schema, table))
        )
        curs.execute(
            "SELECT indexname FROM pg_indexes WHERE schemaname = %s AND tablename = %s",
            (schema, table),
        )
        for row in curs.fetchall():  # the new table's indexes take these names
            curs.execute(
                SQL("ALTER INDEX {i} RENAME TO {n}").format(
                    i=Identifier(schema, row["indexname"]),
                    n=Identifier(f"{row['indexname']}_before_partitioning"),
                )
            )
        curs.execute(
            SQL("ALTER TABLE {t} RENAME TO {o}").format(
                t=Identifier(schema, table), o=Identifier(old)
            )
        )
        function = Identifier(schema, f"{table}_append")
        for statement in partitioned_layout(schema, table, function, datastore.lock_timeout):
            curs.execute(statement, prepare=False)
        now = TokenPeriod.of(datetime.now(UTC))
        first = _first_token_period(curs, schema, old) or now
        ensure_token_months(curs, schema, table, first, first.months_until(now) + MONTHS_AHEAD)
        curs.execute(
            SQL(
                "INSERT INTO {t} (originator_id, originator_version, kind, topic, state, "
                "notification_id) SELECT originator_id, originator_version, {kind}, topic, state, "
                "notification_id FROM {o} ORDER BY notification_id"
            ).format(
                t=Identifier(schema, table),
                o=Identifier(schema, old),
                kind=SQL(kind_sql("originator_id", "topic")),
            )
        )
        moved = curs.rowcount
        curs.execute(
            SQL(
                "SELECT setval(pg_get_serial_sequence({t}, 'notification_id'), "
                "coalesce((SELECT max(notification_id) FROM {o}), 0) + 1, false)"
            ).format(t=Literal(f"{schema}.{table}"), o=Identifier(schema, old))
        )
        curs.execute(SQL("DROP TABLE {o}").format(o=Identifier(schema, old)))
    return int(moved)


def _first_token_period(curs: Cursor[Any], schema: str, table: str) -> TokenPeriod | None:
    """The month of the oldest UUIDv7 token in `table` (ids sort by time), if any."""
    curs.execute(
        SQL("SELECT originator_id FROM {t} WHERE {kind} = 1 ORDER BY originator_id LIMIT 1").format(
            t=Identifier(schema, table), kind=SQL(kind_sql("originator_id", "topic"))
        )
    )
    row = curs.fetchone()
    if row is None:
        return None
    return issued_period(row["originator_id"])
