"""Following the notification log: in-memory views, persisted with their position.

Every process holds its views in memory and polls the log for the topics they fold (on
PostgreSQL, a worker's followers when told of a change: `adapters/log_changes.py`), so hot
paths never query. The same fold is written to a durable table with its tracked position,
so a process starts from the table instead of from the first event.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from typing import Any, Generic, Protocol, TypeVar, runtime_checkable

from adapters.log_changes import LogChanges, next_turn
from adapters.projection_tables import ProjectionTable

log = logging.getLogger(__name__)
R = TypeVar("R")
READ_BATCH = 1000
READ_WINDOW = 10_000


class NotificationLog(Protocol):
    """The part of the event store a follower reads."""

    def head(self) -> int: ...

    def read(self, after: int, limit: int, stop: int | None = None, topics: Any = ()) -> Any: ...

    @property
    def mapper(self) -> Any: ...


class View(Protocol[R]):
    """An in-memory read model a follower folds events into."""

    position: int

    def get(self, key: str) -> R | None: ...

    def replace(self, records: Iterable[R], position: int) -> None: ...

    def apply(self, event: Any, notification_id: int) -> str | tuple[str, ...] | None:
        """Fold one event in; the key (or keys) of the records it changed."""


@runtime_checkable
class StoredEventView(Protocol):
    """A view that folds events as the log stores them (`apply_stored` instead of `apply`),
    decoding with the log's mapper only what it needs."""

    def apply_stored(self, notification: Any, mapper: Any) -> str | tuple[str, ...] | None: ...


def touched_keys(touched: str | tuple[str, ...] | None) -> tuple[str, ...]:
    """What `View.apply` returned, as a tuple of keys."""
    if touched is None:
        return ()
    return (touched,) if isinstance(touched, str) else touched


class Health:
    """Whether a background loop is failing, and shown by `/readyz`. Each different failure
    is logged once while the loop keeps failing (not on every retry, nor every time a loop
    alternates between two errors), and the recovery once."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.failure: str | None = None
        self._logged: set[str] = set()

    def failed(self, exc: BaseException) -> None:
        failure = f"{type(exc).__name__}: {exc}"
        if failure not in self._logged:
            log.error("%s is failing, retrying: %s", self.name, failure, exc_info=exc)
            if len(self._logged) >= 32:  # errors that name changing values: stay bounded
                self._logged.clear()
            self._logged.add(failure)
        self.failure = failure

    def succeeded(self) -> None:
        if self.failure is not None:
            log.warning("%s recovered", self.name)
        self.failure = None
        self._logged.clear()


class LogFollower(Generic[R]):
    """Folds the log's events of some topics into a view, and persists what changed."""

    def __init__(
        self,
        log_: NotificationLog,
        table: ProjectionTable[R],
        view: View[R],
        topics: tuple[str, ...],
        interval: float = 0.1,
        *,
        name: str = "follower",
        changes: LogChanges | None = None,
    ) -> None:
        self._topics = topics
        self._changes = changes
        self._name = name
        self._log = log_
        self._table = table
        self.view = view
        # checked here, not per event: a protocol check costs more than folding a token
        self._stored_view = view if isinstance(view, StoredEventView) else None
        self._interval = interval
        self._scanned = 0
        self._unsaved: set[str] = set()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.ready = threading.Event()
        self.health = Health(name)
        self._lock = threading.Lock()

    def load(self) -> None:
        """Start from the durable table, then catch up with the log."""
        records, position = self._table.load()
        with self._lock:
            self.view.replace(records, position)
            self._scanned = position
        self.catch_up()
        self.ready.set()

    def catch_up(self) -> None:
        """Fold every committed client event not yet seen, then persist what changed."""
        with self._lock:
            head = self._log.head()
            while self._scanned < head:
                # A bounded range of positions per query: with only `LIMIT` and a topic filter
                # the planner may sort the rest of the table for every batch.
                upto = min(head, self._scanned + READ_WINDOW)
                batch = self._log.read(self._scanned, READ_BATCH, stop=upto, topics=self._topics)
                mapper = self._log.mapper
                for notification in batch:
                    if self._stored_view is not None:
                        touched = self._stored_view.apply_stored(notification, mapper)
                    else:
                        touched = self.view.apply(
                            mapper.to_domain_event(notification), notification.id
                        )
                    self._unsaved.update(touched_keys(touched))
                    # folded: a failure further on retries after it, never folds it twice
                    self._scanned = notification.id
                # A full batch ends where it ends: the rest of the window is read next.
                self._scanned = batch[-1].id if len(batch) == READ_BATCH else upto
            self._save()

    def _save(self) -> None:
        if not self._unsaved:
            return
        records = [r for cid in sorted(self._unsaved) if (r := self.view.get(cid))]
        if not self._table.write(records, self.view.position):
            log.debug("%s table already at or past %s", self._name, self.view.position)
        self._unsaved.clear()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        seen = -1  # the first turn does not wait for a change
        while not next_turn(self._stop, self._interval, self._changes, seen):
            seen = self._changes.generation if self._changes is not None else 0
            try:
                if self.ready.is_set():
                    self.catch_up()
                else:
                    self.load()
            except Exception as exc:
                self.health.failed(exc)
                seen = -1  # retried at the next interval, not at the next change
            else:
                self.health.succeeded()

    def stop(self) -> None:
        self._stop.set()
        if self._changes is not None:
            self._changes.report()  # wakes a turn waiting for a change: it sees the stop
        if self._thread is not None:
            self._thread.join(timeout=5)
