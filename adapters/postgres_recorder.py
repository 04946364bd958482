"""A PostgreSQL application recorder tuned for group commit: one round trip per batch.

eventsourcing's recorder sends `BEGIN`, the EXCLUSIVE table lock, `NOTIFY`, the insert and
`COMMIT` as separate statements, holding the table lock across client round trips and
whatever the client thread does in between. With several server processes writing, that
hold time is what serialises them (measured here: ≈5 ms per batch under load, for 1.5 ms of
work). This recorder calls one PL/pgSQL function, in autocommit mode, that takes the same
lock and inserts; the statement's implicit transaction commits when it returns.
The lock is held for server-side work only, it is still taken before any notification id is
drawn and released only at commit, so ids follow commit order and a reader tailing the log
never passes over a gap that fills in later. (eventsourcing's own `ENABLE_DB_FUNCTIONS` mode
skips that lock, and readers then miss events: do not use it.)

It does not send eventsourcing's `NOTIFY` at every commit: nothing here subscribes to that
channel, and PostgreSQL before 19 wakes every backend listening on any channel of the
database at each `NOTIFY` (async.c keeps no table of who listens to what), so the workers'
change listeners would each wake, read the queue and find nothing, once per batch. Only a
commit that appends something besides tokens' issuance notifies, on its own channel
(`changes_channel`).

A new store's events table is partitioned (issue 17), so that a month of token events can
leave by dropping a table instead of a DELETE that bloats the live one:

    keyledger_events                  LIST (kind)
      keyledger_events_kept           kind 0: every event that is not a token's
      keyledger_events_legacy_tokens  kind 2: tokens with an older (UUIDv4) jti
      keyledger_events_tokens         kind 1: tokens with a UUIDv7 jti, RANGE (originator_id)
        keyledger_events_tokens_2026_11 ...  a month of token ids each (domain/token_periods.py)
        keyledger_events_tokens_default      ids of months without a table of their own

The append function derives `kind` from the topic and the id's version, and an aggregate's
kind never changes: each partition's primary key (id, version) is then unique across the
store, one event per version as before, with index entries no wider than before. `kind`
sits between the version and the topic, in padding the row had anyway. Month tables are made
a year ahead at every start and every retention run. A store created before keeps its single
table and its own append function.

The append function locks the partitioned table alone (`LOCK TABLE ONLY`): every append
takes that lock before it draws a notification id, and it conflicts with itself and with any
other insert's lock on the table, so appends still commit one after another. Without `ONLY`
the lock recursed into every partition (seventeen in a new store) on every batch: about 45
of the 150 µs of server CPU a batch of eight tokens cost (in process, alternating).
Retention's month drop still locks the whole tree, root first, as before. So every write
goes through `keyledger_events`, never straight into a partition: an insert into a partition
takes no lock on the root and could commit a lower notification id after a follower read past
it. Restore inserts through the root; retention only deletes from a partition, which draws
no id.

The batch travels as one array per column (`uuid[]`, `bigint[]`, `text[]`, `bytea[]`), which
psycopg dumps natively, rather than an array of a composite type, which it dumps as text
with regular expressions per field (≈34 µs an event, measured here).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from eventsourcing.persistence import InterfaceError, OperationalError, StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore
from eventsourcing.utils import retry
from psycopg import Cursor, errors
from psycopg.rows import DictRow
from psycopg.sql import SQL, Composed, Identifier, Literal

from adapters.compact_events import stored_topics
from adapters.token_event_rows import kind_sql
from domain.token import IssuedToken
from domain.token_periods import TokenPeriod

log = logging.getLogger("keyledger")
MONTHS_AHEAD = 12

# Serialises schema creation across processes (CREATE OR REPLACE FUNCTION is not race-safe).
SCHEMA_LOCK_KEY = 0x6B6C_6564_6765_72  # "kledger"
_ISSUED = SQL(", ").join(Literal(t) for t in stored_topics(IssuedToken.Issued))


def changes_channel(events_table: str) -> str:
    """The channel told at each commit that appends anything but tokens' issuance (a client,
    a key, a revocation...): the workers' followers wait on it (`adapters/log_changes.py`)
    rather than poll a log that, under load, grows by nothing but tokens."""
    return events_table.replace(".", "_") + "_changes"


def _notify_changes(events_table: str) -> Composed:
    return SQL(
        "IF EXISTS (SELECT FROM unnest(topics) AS c(tp) WHERE tp <> ALL (ARRAY[{issued}])) "
        "THEN NOTIFY {changes}; END IF; "
    ).format(issued=_ISSUED, changes=Identifier(changes_channel(events_table)))


class GroupCommitPostgresApplicationRecorder(PostgresApplicationRecorder):
    """Appends a batch of events with one call of a locking insert function."""

    def __init__(self, datastore: PostgresDatastore, *, events_table_name: str = "stored_events"):
        super().__init__(datastore, events_table_name=events_table_name)
        function = Identifier(datastore.schema, f"{events_table_name}_append")
        self._unpartitioned = [  # the single table, and its unique index on notification_id
            self.sql_create_statements[self.create_table_statement_index],
            *(s for s in self.sql_create_statements if "UNIQUE INDEX" in s.as_string()),
        ]
        self.sql_create_statements.append(
            SQL(
                "CREATE OR REPLACE FUNCTION {function}("
                "ids {id_type}[], versions bigint[], topics text[], states bytea[]) "
                "RETURNS SETOF bigint LANGUAGE plpgsql AS $body$ "
                "BEGIN "
                "SET LOCAL lock_timeout = {lock_timeout}; "
                "LOCK TABLE {table} IN EXCLUSIVE MODE; "
                "{notify_changes}"
                "RETURN QUERY INSERT INTO {table} "
                "(originator_id, originator_version, topic, state) "
                "SELECT * FROM unnest(ids, versions, topics, states) "
                "RETURNING notification_id; "
                "END $body$"
            ).format(
                function=function,
                id_type=Identifier(datastore.originator_id_type),
                lock_timeout=Literal(f"{datastore.lock_timeout}s"),
                table=Identifier(datastore.schema, events_table_name),
                notify_changes=_notify_changes(events_table_name),
            )
        )
        self._unpartitioned.append(self.sql_create_statements[-1])
        self._partitioned = partitioned_layout(
            datastore.schema, events_table_name, function, datastore.lock_timeout
        )
        # Binary parameters: psycopg's text form of a bytea array (hex, then array-quoted)
        # costs twice the binary one per batch, all of it on the serving event loop.
        self.append_statement = SQL(
            "SELECT * FROM {function}(%b::{id_type}[], %b::bigint[], %b::text[], %b::bytea[])"
        ).format(function=function, id_type=Identifier(datastore.originator_id_type))

    def _create_table(self, curs: Cursor[DictRow]) -> None:
        curs.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK_KEY,))
        curs.execute(
            "SELECT c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = %s AND c.relname = %s",
            (self.datastore.schema or "public", self.events_table_name),
        )
        found = curs.fetchone()
        single = (found is not None and found["relkind"] != "p") or (
            self.datastore.originator_id_type != "uuid"
        )
        if single:
            super()._create_table(curs)
            return
        for statement in self._partitioned:
            curs.execute(statement, prepare=False)
        for statement in self.sql_create_statements:
            text = statement.as_string()
            if "CREATE TYPE" not in text and all(statement is not s for s in self._unpartitioned):
                curs.execute(statement, prepare=False)
        now = TokenPeriod.of(datetime.now(UTC))
        ensure_token_months(curs, self.datastore.schema, self.events_table_name, now)

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        if not stored_events:
            return []
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(
                self.append_statement,
                (
                    [e.originator_id for e in stored_events],
                    [e.originator_version for e in stored_events],
                    [e.topic for e in stored_events],
                    [e.state for e in stored_events],
                ),
                prepare=True,
            )
            return [
                row[0] if isinstance(row, tuple) else next(iter(row.values()))
                for row in curs.fetchall()
            ]


def _autovacuum() -> SQL:
    return SQL(
        "WITH (autovacuum_enabled = true, autovacuum_vacuum_threshold = 100000000, "
        "autovacuum_vacuum_scale_factor = 0.5, autovacuum_analyze_threshold = 1000, "
        "autovacuum_analyze_scale_factor = 0.01)"
    )


def partitioned_layout(
    schema: str, table: str, function: Identifier, lock_timeout: int
) -> list[Composed]:
    """The partitioned events table, its fixed partitions, its index and append function."""

    def name(suffix: str = "") -> Identifier:
        return Identifier(schema, f"{table}{suffix}")

    return [
        SQL(
            "CREATE TABLE IF NOT EXISTS {t} (originator_id uuid NOT NULL, "
            "originator_version bigint NOT NULL, kind smallint NOT NULL, topic text, "
            "state bytea, notification_id bigserial) PARTITION BY LIST (kind)"
        ).format(t=name()),
        SQL(
            "CREATE TABLE IF NOT EXISTS {p} PARTITION OF {t} "
            "(PRIMARY KEY (originator_id, originator_version)) FOR VALUES IN (0) {v}"
        ).format(p=name("_kept"), t=name(), v=_autovacuum()),
        SQL(
            "CREATE TABLE IF NOT EXISTS {p} PARTITION OF {t} "
            "(PRIMARY KEY (originator_id, originator_version)) FOR VALUES IN (2) {v}"
        ).format(p=name("_legacy_tokens"), t=name(), v=_autovacuum()),
        SQL(
            "CREATE TABLE IF NOT EXISTS {p} PARTITION OF {t} "
            "(PRIMARY KEY (originator_id, originator_version)) FOR VALUES IN (1) "
            "PARTITION BY RANGE (originator_id)"
        ).format(p=name("_tokens"), t=name()),
        SQL("CREATE TABLE IF NOT EXISTS {p} PARTITION OF {t} DEFAULT {v}").format(
            p=name("_tokens_default"), t=name("_tokens"), v=_autovacuum()
        ),
        SQL("CREATE INDEX IF NOT EXISTS {i} ON {t} (notification_id)").format(
            i=Identifier(f"{table}_notification_id_idx"), t=name()
        ),
        SQL(
            "CREATE OR REPLACE FUNCTION {function}("
            "ids uuid[], versions bigint[], topics text[], states bytea[]) "
            "RETURNS SETOF bigint LANGUAGE plpgsql AS $body$ "
            "BEGIN "
            "SET LOCAL lock_timeout = {lock_timeout}; "
            "LOCK TABLE ONLY {t} IN EXCLUSIVE MODE; "
            "{notify_changes}"
            "RETURN QUERY INSERT INTO {t} "
            "(originator_id, originator_version, topic, state, kind) "
            "SELECT i, v, tp, s, {kind} "
            "FROM unnest(ids, versions, topics, states) AS u(i, v, tp, s) "
            "RETURNING notification_id; "
            "END $body$"
        ).format(
            function=function,
            t=name(),
            notify_changes=_notify_changes(table),
            kind=SQL(kind_sql("i", "tp")),
            lock_timeout=Literal(f"{lock_timeout}s"),
        ),
    ]


def month_table(table: str, period: TokenPeriod) -> str:
    return f"{table}_tokens_{period.year:04d}_{period.month:02d}"


def ensure_token_months(
    curs: Cursor[Any], schema: str, table: str, first: TokenPeriod, months: int = MONTHS_AHEAD
) -> list[TokenPeriod]:
    """Month tables from `first` for `months` more; a month whose ids already sit in the
    default table is left there (logged): the periods that got no table of their own."""
    skipped = []
    period = first
    for _ in range(months + 1):
        low, high = period.id_range()
        curs.execute("SAVEPOINT keyledger_month")
        try:
            curs.execute(
                SQL(
                    "CREATE TABLE IF NOT EXISTS {p} PARTITION OF {t} "
                    "FOR VALUES FROM ({low}) TO ({high}) {v}"
                ).format(
                    p=Identifier(schema, month_table(table, period)),
                    t=Identifier(schema, f"{table}_tokens"),
                    low=Literal(str(low)),
                    high=Literal(str(high)),
                    v=_autovacuum(),
                ),
                prepare=False,
            )
        except errors.CheckViolation as exc:
            curs.execute("ROLLBACK TO SAVEPOINT keyledger_month")
            log.warning("token events of %s stay in the default partition: %s", period, exc)
            skipped.append(period)
        else:
            curs.execute("RELEASE SAVEPOINT keyledger_month")
        period = period.next()
    return skipped


def token_months(curs: Cursor[Any], schema: str, table: str) -> Iterable[TokenPeriod]:
    """The periods that have a table of their own, oldest first."""
    curs.execute(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "JOIN pg_class p ON p.oid = i.inhparent JOIN pg_namespace n ON n.oid = p.relnamespace "
        "WHERE n.nspname = %s AND p.relname = %s",
        (schema or "public", f"{table}_tokens"),
    )
    prefix = f"{table}_tokens_"
    names = sorted(row[0] if isinstance(row, tuple) else row["relname"] for row in curs.fetchall())
    for name in names:
        suffix = name[len(prefix) :]
        if len(suffix) == 7 and suffix[4] == "_" and suffix.replace("_", "").isdigit():
            yield TokenPeriod(int(suffix[:4]), int(suffix[5:]))
