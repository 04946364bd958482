"""The event store: an eventsourcing application on SQLite or PostgreSQL, chosen by URL."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.domain import DomainEventProtocol
from eventsourcing.persistence import Mapper, Notification

from adapters.compact_events import CompactMapper
from domain.client import Client
from domain.installation import INSTALLATION_ID, Installation
from domain.signing_keys import SIGNING_KEYS_ID, SigningKeys

APP_NAME = "keyledger"


class DatabaseUrlError(ValueError):
    """`KEYLEDGER_DATABASE_URL` names no store keyledger can use."""


class NotInstalled(Exception):
    """No keyledger installation at the database URL, and this process may not create one."""

    def __init__(self, database_url: str) -> None:
        super().__init__(
            f"no keyledger installation at {redacted(database_url)}: check "
            "KEYLEDGER_DATABASE_URL (a relative sqlite path counts from the current directory); "
            "`keyledger serve` or `keyledger admin bootstrap` sets up a new one"
        )


def redacted(database_url: str) -> str:
    """The URL without its password, for messages."""
    url = urlsplit(database_url)
    if url.password is None:
        return database_url
    return url._replace(netloc=url.netloc.replace(f":{url.password}@", ":***@")).geturl()


def persistence_env(
    database_url: str, *, pool_size: int = 5, create: bool = True
) -> dict[str, str]:
    """The eventsourcing settings for `sqlite:///path` or `postgresql://user@host:port/db`;
    without `create`, nothing is created: no SQLite file, no tables."""
    url = urlsplit(database_url)
    if url.scheme == "sqlite":
        path = unquote(url.path[1:] if url.path.startswith("/") else url.path)
        if not path:
            raise DatabaseUrlError("sqlite URL needs a path: sqlite:///var/keyledger.db")
        if not create and not Path(path).is_file():
            raise NotInstalled(database_url)
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        return {
            "PERSISTENCE_MODULE": "adapters.sqlite_store:WriteLockFirstSQLiteFactory",
            "SQLITE_DBNAME": path,
            "SQLITE_LOCK_TIMEOUT": "30",
            "CREATE_TABLE": "y" if create else "n",
        }
    if url.scheme in ("postgresql", "postgres"):
        dbname = unquote(url.path.lstrip("/"))
        if not dbname or not url.hostname:
            raise DatabaseUrlError("postgresql URL needs a host and a database name")
        return {
            "PERSISTENCE_MODULE": "eventsourcing.postgres",
            "POSTGRES_DBNAME": dbname,
            "POSTGRES_HOST": url.hostname,
            "POSTGRES_PORT": str(url.port or 5432),
            "POSTGRES_USER": unquote(url.username or "postgres"),
            "POSTGRES_PASSWORD": unquote(url.password or ""),
            "POSTGRES_POOL_SIZE": str(pool_size),
            "POSTGRES_MAX_OVERFLOW": "4",
            "POSTGRES_LOCK_TIMEOUT": "5",
            "POSTGRES_CONNECT_TIMEOUT": "5",
            "APPLICATION_RECORDER_TOPIC": (
                "adapters.postgres_recorder:GroupCommitPostgresApplicationRecorder"
            ),
            "CREATE_TABLE": "y" if create else "n",
        }
    raise DatabaseUrlError(
        f"unsupported database URL scheme {url.scheme!r}: use sqlite:/// or postgresql://"
    )


class Ledger(Application[UUID]):
    """The keyledger event store: commands that record domain events, and the raw log."""

    name = APP_NAME

    def __init__(self, database_url: str, *, pool_size: int = 5, create: bool = True) -> None:
        super().__init__(env=persistence_env(database_url, pool_size=pool_size, create=create))
        self.database_url = database_url

    def construct_mapper(self) -> Mapper[UUID]:
        """eventsourcing's JSON for every event but the token's own (adapters/compact_events.py)."""
        return CompactMapper(
            transcoder=self.construct_transcoder(), load_keys=lambda: self.signing_key_events(0)
        )

    @property
    def compact_mapper(self) -> CompactMapper:
        """The mapper, as what `construct_mapper` made it (the relay decodes rows with it)."""
        mapper = self.mapper
        assert isinstance(mapper, CompactMapper)
        return mapper

    @property
    def datastore(self) -> Any:
        """The connection pool the recorders share (for read-model tables beside the events)."""
        return self.factory.datastore  # type: ignore[attr-defined]

    def append(self, events: Sequence[DomainEventProtocol[UUID]]) -> None:
        """Durably record already-created events in one transaction (all or none).

        The same as `save(*events)` for an application without snapshots or notify hooks,
        minus `save`'s per-object runtime-Protocol isinstance checks (≈30 µs an event here).
        """
        self.events.put(list(events))

    def get_client(self, client_id: UUID) -> Client | None:
        try:
            client: object = self.repository.get(client_id)
        except AggregateNotFoundError:
            return None
        return client if isinstance(client, Client) else None

    def get_installation(self) -> Installation | None:
        """The installation record; None in a store that has none (or no tables yet)."""
        try:
            installation: object = self.repository.get(INSTALLATION_ID)
        except AggregateNotFoundError:
            return None
        except Exception as exc:  # no tables: a store that was never set up
            if _missing_table(exc):
                return None
            raise
        return installation if isinstance(installation, Installation) else None

    def get_signing_keys(self) -> SigningKeys | None:
        try:
            keys: object = self.repository.get(SIGNING_KEYS_ID)
        except AggregateNotFoundError:
            return None
        return keys if isinstance(keys, SigningKeys) else None

    def signing_key_events(self, after_version: int) -> list[Any]:
        """The signing-keys events after `after_version` (a cheap poll by aggregate id)."""
        return list(self.repository.event_store.get(SIGNING_KEYS_ID, gt=after_version))

    def head(self) -> int:
        """The highest notification id committed so far (0 for an empty store)."""
        return self.recorder.max_notification_id() or 0

    def read(
        self, after: int, limit: int, stop: int | None = None, topics: Sequence[str] = ()
    ) -> Sequence[Notification]:
        return self.recorder.select_notifications(
            after + 1, limit=limit, stop=stop, topics=list(topics)
        )


def _missing_table(exc: BaseException) -> bool:
    """PostgreSQL's undefined_table (42P01) or SQLite's "no such table"."""
    return (
        getattr(exc, "sqlstate", None) == "42P01"
        or "no such table" in str(exc)
        or (exc.__cause__ is not None and _missing_table(exc.__cause__))
    )
