"""The log as it was before retention: the store's events with the archived ones merged back
in at their own positions, for readers that start from the first event (a rebuild, an
as-of copy, a follower whose table is new).

An archive holds its events in position order, so each is read forward once, in step with
the reader's windows of positions; an archive is opened only when a window reaches its
range. Followers that were past a period when it was removed never need this: retention
waits for them.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import takewhile
from typing import Any, TypeVar

from eventsourcing.persistence import Notification

from adapters.token_archives import Row

T = TypeVar("T")


@dataclass
class ArchivedRange:
    """One archive: the positions it covers and how to read its rows (in position order).

    A reader may step back within its last window (a capped read goes on from the last event
    it returned): the rows read past `after` are kept until a read starts beyond them, so
    the archive is still read forward once."""

    first: int
    last: int
    open_rows: Callable[[], Iterator[Row]]
    _rows: Iterator[Row] | None = field(default=None, repr=False)
    _next: Row | None = field(default=None, repr=False)
    _kept: deque[Row] = field(default_factory=deque, repr=False)  # rows in (_kept_after, _read]
    _kept_after: int = field(default=0, repr=False)
    _read: int = field(default=0, repr=False)  # every row at or below it was read

    def window(self, after: int, upto: int, topics: frozenset[str]) -> list[Notification]:
        """Its events with positions in (after, upto] and one of `topics`."""
        if upto < self.first or after >= self.last:
            return []
        if self._rows is None or after < self._kept_after:
            self._rows, self._next, self._kept, self._read = self.open_rows(), None, deque(), 0
        while self._kept and self._kept[0][0] <= after:
            self._kept.popleft()
        self._kept_after = after
        while self._read < min(upto, self.last):
            row = self._next if self._next is not None else next(self._rows, None)
            self._next = None
            if row is None:
                self._read = self.last
            elif row[0] > upto:
                self._next, self._read = row, upto
            else:
                self._read = row[0]
                if row[0] > after:
                    self._kept.append(row)
        return [
            _notification(row)
            for row in takewhile(lambda row: row[0] <= upto, self._kept)
            if row[3] in topics
        ]


def _notification(row: Row) -> Notification:
    position, token_id, version, topic, state = row
    return Notification(
        id=position, originator_id=token_id, originator_version=version, topic=topic, state=state
    )


class ArchivedLog:
    """The archived ranges retention removed, read back by windows of positions; `periods`,
    the months it reads back (one without events has no range)."""

    def __init__(self, ranges: Sequence[ArchivedRange], periods: Iterable[str] = ()) -> None:
        self._ranges = list(ranges)
        self.periods = frozenset(periods)

    def __bool__(self) -> bool:
        return bool(self._ranges)

    def merged(
        self, stored: Sequence[Notification], after: int, upto: int, topics: Sequence[str]
    ) -> list[Notification]:
        """`stored` (the store's events in (after, upto]) with the archived ones of that range
        the store does not hold (a month loaded back, or a removal recorded and not finished
        yet, is there still), in position order."""
        wanted = frozenset(topics)
        archived = [w for r in self._ranges if (w := r.window(after, upto, wanted))]
        if not archived:
            return list(stored)
        return list(by_position(stored, archived, lambda n: n.id))


def by_position(
    stored: Iterable[T], archived: Iterable[Iterable[T]], position: Callable[[T], int]
) -> Iterator[T]:
    """The store's events and the archived ones (each stream in position order) merged in
    position order, each read once, forward; an archived event at a position the store holds
    is left out."""
    previous = None
    for item in heapq.merge(stored, *archived, key=position):
        if position(item) != previous:  # on a tie the stored one comes first, and is kept
            previous = position(item)
            yield item


class LogWithArchives:
    """A notification log (`Ledger`) whose reads include the archived events."""

    def __init__(self, log: Any, archived: ArchivedLog) -> None:
        self._log = log
        self._archived = archived

    @property
    def mapper(self) -> Any:
        return self._log.mapper

    def head(self) -> int:
        head: int = self._log.head()
        return head

    def read(
        self, after: int, limit: int, stop: int | None = None, topics: Any = ()
    ) -> list[Notification]:
        """The first `limit` events after `after` (up to `stop`), the archived ones merged in
        at their positions: a caller that reads on from the last one's id gets the rest."""
        stored = list(self._log.read(after, limit, stop=stop, topics=topics))
        if len(stored) == limit:  # the store's batch ends there: nothing is known beyond it
            upto = stored[-1].id
        elif stop is not None:
            upto = stop
        else:
            upto = self.head()
        return self._archived.merged(stored, after, upto, topics)[:limit]
