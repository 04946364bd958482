"""A log with archives merged back reads like any notification log: at most `limit` events
a read, in position order, and a reader going on from the last one it got sees every other
event once, with each archive read forward once."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

from eventsourcing.persistence import Notification

from adapters.archived_log import ArchivedLog, ArchivedRange, LogWithArchives
from adapters.token_archives import Row

TOPIC = "ti2"
STORED = [1, 4, 8, 9, 12]  # the store's events; the archive holds every other position
ARCHIVED = [p for p in range(1, 13) if p not in STORED]


class StoredLog:
    """The store's side: its notifications, read as eventsourcing's log reads them."""

    mapper: Any = None

    def __init__(self, positions: list[int]) -> None:
        self._events = [_notification(p) for p in positions]

    def head(self) -> int:
        return self._events[-1].id

    def read(
        self, after: int, limit: int, stop: int | None = None, topics: Any = ()
    ) -> list[Notification]:
        wanted = [n for n in self._events if n.id > after and (stop is None or n.id <= stop)]
        return wanted[:limit]


def _notification(position: int) -> Notification:
    return Notification(
        id=position,
        originator_id=uuid.UUID(int=position),
        originator_version=1,
        topic=TOPIC,
        state=b"",
    )


class Archive:
    """An archive's rows, counting how often it is opened."""

    def __init__(self, positions: list[int]) -> None:
        self.rows: list[Row] = [(p, uuid.UUID(int=p), 1, TOPIC, b"") for p in positions]
        self.opened = 0

    def open(self) -> Iterator[Row]:
        self.opened += 1
        return iter(self.rows)


def log_with(archive: Archive) -> LogWithArchives:
    archived = ArchivedLog([ArchivedRange(ARCHIVED[0], ARCHIVED[-1], archive.open)])
    return LogWithArchives(StoredLog(STORED), archived)


def read_on(log: LogWithArchives, limit: int) -> list[int]:
    """Every position, reading on from the last event of each read."""
    seen: list[int] = []
    while batch := log.read(seen[-1] if seen else 0, limit, topics=(TOPIC,)):
        seen.extend(n.id for n in batch)
    return seen


def test_a_read_returns_at_most_limit_events_the_archived_ones_in_their_places() -> None:
    batch = log_with(Archive(ARCHIVED)).read(0, 4, topics=(TOPIC,))

    assert [n.id for n in batch] == [1, 2, 3, 4]


def test_a_reader_going_on_from_the_last_event_gets_every_event_once() -> None:
    assert read_on(log_with(Archive(ARCHIVED)), limit=3) == list(range(1, 13))


def test_reading_on_after_a_full_read_opens_the_archive_once() -> None:
    archive = Archive(ARCHIVED)

    read_on(log_with(archive), limit=2)

    assert archive.opened == 1
