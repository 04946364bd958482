"""Where the detector keeps its rule state, its consumer offsets and its alerts.

State, offsets and new alerts are written in one transaction, before the offsets are
committed to Kafka, so a restart resumes exactly where the stored state ends. Alerts are
also an outbox: stored unpublished, published to the alerts topic, then marked, so an
alert stored just before a crash is still published after it (with the same id).
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import msgspec
import psycopg

from domain.anomaly_detection import Alert

_TABLES = (
    "CREATE TABLE IF NOT EXISTS keyledger_detector_state ("
    "name text PRIMARY KEY, state text NOT NULL, offsets text NOT NULL)",
    "CREATE TABLE IF NOT EXISTS keyledger_alerts ("
    "id text PRIMARY KEY, rule text NOT NULL, severity text NOT NULL, subject text NOT NULL, "
    "last_seen text NOT NULL, body text NOT NULL, published integer NOT NULL DEFAULT 0)",
)


class AlertStore:
    """The detector's tables beside the event store, on SQLite or PostgreSQL."""

    def __init__(self, database_url: str) -> None:
        url = urlsplit(database_url)
        self._url = database_url
        self._sqlite: Path | None = None
        if url.scheme == "sqlite":
            self._sqlite = Path(unquote(url.path[1:] if url.path.startswith("/") else url.path))
        with self._transaction() as run:
            for ddl in _TABLES:
                run(ddl, ())

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[Any]:
        """A function `run(sql, params) -> rows`; `%s` placeholders on both backends."""
        if self._sqlite is not None:
            db = sqlite3.connect(self._sqlite, timeout=30)
            try:
                with db:
                    yield lambda sql, params: db.execute(sql.replace("%s", "?"), params).fetchall()
            finally:
                db.close()
        else:
            with psycopg.connect(self._url, connect_timeout=5) as conn, conn.transaction():

                def run(sql: str, params: Sequence[Any]) -> list[Any]:
                    cursor = conn.execute(sql, params)
                    return cursor.fetchall() if cursor.description else []

                yield run

    def load(self, name: str) -> tuple[dict[str, Any] | None, dict[str, int]]:
        """The stored rule state and offsets ("partition" -> next offset), if any."""
        with self._transaction() as run:
            rows = run(
                "SELECT state, offsets FROM keyledger_detector_state WHERE name = %s", (name,)
            )
        if not rows:
            return None, {}
        return json.loads(rows[0][0]), {k: int(v) for k, v in json.loads(rows[0][1]).items()}

    def save(
        self,
        name: str,
        state: dict[str, Any],
        offsets: dict[str, int],
        alerts: Sequence[Alert],
    ) -> None:
        """Store state, offsets and new alerts together (an alert id already stored stays)."""
        with self._transaction() as run:
            run(
                "INSERT INTO keyledger_detector_state (name, state, offsets) VALUES (%s, %s, %s) "
                "ON CONFLICT (name) DO UPDATE SET state = excluded.state, "
                "offsets = excluded.offsets",
                (name, msgspec.json.encode(state).decode(), json.dumps(offsets)),
            )
            for alert in alerts:
                run(
                    "INSERT INTO keyledger_alerts (id, rule, severity, subject, last_seen, body) "
                    "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (id) DO NOTHING",
                    (
                        alert.id,
                        alert.rule,
                        alert.severity,
                        alert.subject,
                        alert.last_seen.isoformat(),
                        json.dumps(alert.to_dict()),
                    ),
                )

    def unpublished(self) -> list[Alert]:
        with self._transaction() as run:
            rows = run(
                "SELECT body FROM keyledger_alerts WHERE published = 0 ORDER BY last_seen", ()
            )
        return [Alert.from_dict(json.loads(r[0])) for r in rows]

    def mark_published(self, ids: Sequence[str]) -> None:
        with self._transaction() as run:
            for alert_id in ids:
                run("UPDATE keyledger_alerts SET published = 1 WHERE id = %s", (alert_id,))

    def alerts(
        self, *, since: datetime | None = None, rule: str | None = None, limit: int = 100
    ) -> list[Alert]:
        """Stored alerts, newest first."""
        where, params = ["1 = 1"], []
        if since is not None:
            where.append("last_seen >= %s")
            params.append(since.astimezone(UTC).isoformat())
        if rule is not None:
            where.append("rule = %s")
            params.append(rule)
        sql = (
            f"SELECT body FROM keyledger_alerts WHERE {' AND '.join(where)} "  # noqa: S608 - fixed clauses
            "ORDER BY last_seen DESC, id LIMIT %s"
        )
        with self._transaction() as run:
            rows = run(sql, (*params, limit))
        return [Alert.from_dict(json.loads(r[0])) for r in rows]
