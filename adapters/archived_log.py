"""The log as it was before retention: the store's events with the archived ones merged back
in at their own positions, for readers that start from the first event (a rebuild, an
as-of copy, a follower whose table is new).

An archive holds its events in position order, so each is read forward once, in step with
the reader's windows of positions; an archive is opened only when a window reaches its
range. Followers that were past a period when it was removed never need this: retention
waits for them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from eventsourcing.persistence import Notification

from adapters.token_archives import Row

READ_BATCH = 1000


@dataclass
class ArchivedRange:
    """One archive: the positions it covers and how to read its rows (in position order)."""

    first: int
    last: int
    open_rows: Callable[[], Iterator[Row]]
    _rows: Iterator[Row] | None = field(default=None, repr=False)
    _next: Row | None = field(default=None, repr=False)
    _consumed: int = field(default=0, repr=False)  # every row at or below it was handed out

    def window(self, after: int, upto: int, topics: frozenset[str]) -> list[Notification]:
        """Its events with positions in (after, upto] and one of `topics`."""
        if upto < self.first or after >= self.last:
            return []
        if self._rows is None or after < self._consumed:
            self._rows, self._next, self._consumed = self.open_rows(), None, 0
        found: list[Notification] = []
        while True:
            row = self._next if self._next is not None else next(self._rows, None)
            self._next = None
            if row is None:
                self._consumed = self.last
                return found
            if row[0] > upto:
                self._next = row
                self._consumed = upto
                return found
            if row[0] > after and row[3] in topics:
                found.append(_notification(row))


def _notification(row: Row) -> Notification:
    position, token_id, version, topic, state = row
    return Notification(
        id=position, originator_id=token_id, originator_version=version, topic=topic, state=state
    )


class ArchivedLog:
    """The archived ranges retention removed, read back by windows of positions."""

    def __init__(self, ranges: Sequence[ArchivedRange]) -> None:
        self._ranges = list(ranges)

    def __bool__(self) -> bool:
        return bool(self._ranges)

    def window(self, after: int, upto: int, topics: Sequence[str]) -> list[Notification]:
        wanted = frozenset(topics)
        return [n for r in self._ranges for n in r.window(after, upto, wanted)]

    def merged(
        self, stored: Sequence[Notification], after: int, upto: int, topics: Sequence[str]
    ) -> list[Notification]:
        """`stored` (the store's events in (after, upto]) with the archived ones of that range
        the store does not hold (a month loaded back, or a removal recorded and not finished
        yet, is there still), in position order."""
        archived = self.window(after, upto, topics)
        if archived:
            held = {n.id for n in stored}
            archived = [n for n in archived if n.id not in held]
        if not archived:
            return list(stored)
        return sorted([*stored, *archived], key=lambda n: n.id)


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
        """The store's batch, and the archived events up to its last position when it is full
        (up to `stop` when it is not): every event of that range, possibly more than `limit`."""
        stored = list(self._log.read(after, limit, stop=stop, topics=topics))
        if len(stored) == limit:
            upto = stored[-1].id
        elif stop is not None:
            upto = stop
        else:
            upto = self.head()
        return self._archived.merged(stored, after, upto, topics)
