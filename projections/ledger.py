"""The ledger projection: the Merkle tree over the whole notification log, built in batches.

It reads committed events in notification order after the tree's position, turns each into
its leaf (`domain.ledger.LedgerEntry`), and stores the touched tiles and the new right edge
in one transaction. It runs beside the request path, never in it: issuing a token costs
nothing more; the tree follows within a polling interval.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from eventsourcing.persistence import Notification

from adapters.ledger_store import LedgerTables, StoredCheckpoint, TreeState
from domain.ledger import LedgerEntry, TreeGrowth

log = logging.getLogger(__name__)
BATCH = 5000
# A stored event as `LedgerTables.leaves` gives it: position, leaf hash, topic.
Row = tuple[int, bytes, str]


def entry_of(notification: Notification) -> LedgerEntry:
    return LedgerEntry.of_row(
        notification.id,
        notification.originator_id,
        notification.originator_version,
        notification.topic,
        notification.state,
    )


class LedgerBuilder:
    """Folds the log into the tree; `integrate()` does one batch and says how many events."""

    def __init__(self, tables: LedgerTables, batch: int = BATCH) -> None:
        self._tables = tables
        self._batch = batch
        self._growth: TreeGrowth | None = None
        self.state = TreeState(0, 0, [])

    @property
    def batch(self) -> int:
        """The most events one `integrate()` folds in."""
        return self._batch

    def load(self) -> TreeState:
        """Start from the stored edge and its open tiles (again after another builder ran)."""
        if not self._tables.exist():  # a store set up before the ledger existed
            self._tables.create()
        self.state = self._tables.tree()
        open_tiles = self._tables.tiles(TreeGrowth.open_tiles(self.state.size))
        self._growth = TreeGrowth(self.state.size, self.state.peaks, open_tiles)
        return self.state

    def peek(self) -> list[Row]:
        """The next batch of committed events after the tree's position."""
        if self._growth is None:
            self.load()
        return self._tables.leaves(self.state.position, self._batch)

    def integrate(
        self,
        checkpoints: Sequence[StoredCheckpoint] = (),
        batch: Sequence[Row] | None = None,
    ) -> int:
        """Add a batch (by default the next one) to the tree; 0 when there is none."""
        if self._growth is None:
            self.load()
        assert self._growth is not None
        if batch is None:
            batch = self.peek()
        if not batch and not checkpoints:
            return 0
        append = self._growth.append_leaf
        for position, leaf, _ in batch:
            append(position, leaf)
        tree = self._growth.tree
        new = TreeState(batch[-1][0] if batch else self.state.position, tree.size, list(tree.peaks))
        try:
            self._tables.advance(self.state, new, self._growth.take_writes(), checkpoints)
        except Exception:
            self._growth = None  # what it holds may not be what is stored: reload
            raise
        self.state = new
        return len(batch)

    def catch_up(self) -> int:
        total = 0
        while added := self.integrate():
            total += added
        return total

    def root(self) -> bytes:
        if self._growth is None:
            self.load()
        assert self._growth is not None
        return self._growth.tree.root()
