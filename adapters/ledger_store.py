"""Where the ledger's tree lives: its right edge, its tiles and its checkpoints, beside the events.

The builder's write is one transaction: the touched tiles and the new right edge, the edge
with a compare-and-set on the position it started from, so a second builder (another replica
that also thought it was the one) fails instead of interleaving leaves. Rows are the same on
SQLite and PostgreSQL; only the placeholder and the blob type differ.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from psycopg.rows import tuple_row

from adapters.sqlite_store import schema_missing
from domain.ledger import TILE_WIDTH, TileWrite, row_leaf, state_hash, topic_text
from domain.ledger_audit import Recorded, recorded_from_tiles
from domain.merkle_tree import HASH_SIZE

_TREE = "ledger"


class LedgerMoved(Exception):
    """Another builder advanced the tree since this one read it."""


@dataclass(frozen=True)
class TreeState:
    """The tree's right edge: the last notification id folded in, the size and the peaks."""

    position: int
    size: int
    peaks: list[bytes]


@dataclass(frozen=True)
class StoredCheckpoint:
    size: int
    root: bytes
    note: str
    position: int
    signed_at: str


_TABLES = (
    "keyledger_ledger_tree",
    "keyledger_ledger_tiles",
    "keyledger_ledger_tiles_first",
    "keyledger_ledger_checkpoints",
)


def _ddl(blob: str) -> list[str]:
    return [
        "CREATE TABLE IF NOT EXISTS keyledger_ledger_tree (name text PRIMARY KEY, "
        f"position bigint NOT NULL, size bigint NOT NULL, peaks {blob} NOT NULL)",
        "CREATE TABLE IF NOT EXISTS keyledger_ledger_tiles (level smallint NOT NULL, "
        f"idx bigint NOT NULL, hashes {blob} NOT NULL, positions {blob} NOT NULL, "
        "first_position bigint, PRIMARY KEY (level, idx))",
        "CREATE INDEX IF NOT EXISTS keyledger_ledger_tiles_first "
        "ON keyledger_ledger_tiles (first_position) WHERE level = 0",
        "CREATE TABLE IF NOT EXISTS keyledger_ledger_checkpoints (size bigint PRIMARY KEY, "
        f"root {blob} NOT NULL, note text NOT NULL, position bigint NOT NULL, "
        "signed_at text NOT NULL)",
    ]


class LedgerTables:
    """The ledger's rows, through the event store's own connection pool (`Ledger.datastore`)."""

    def __init__(self, datastore: Any, *, postgres: bool, events_table: str | None = None) -> None:
        self._datastore = datastore
        self._postgres = postgres
        self._blob = "bytea" if postgres else "BLOB"
        self._events = events_table or ("keyledger_events" if postgres else "stored_events")

    def _sql(self, text: str) -> str:
        return text.replace("?", "%s") if self._postgres else text

    def create(self) -> None:
        """The tables and the tree's row, if missing. On SQLite a write transaction waits for
        the file's write lock (adapters/sqlite_store.py), so every CLI command's start looks
        first, and writes only to a store that lacks them."""
        if not schema_missing(self._datastore, *_TABLES) and self._tree_made():
            return
        with self._datastore.transaction(commit=True) as curs:
            for statement in _ddl(self._blob):
                curs.execute(statement)
            curs.execute(
                self._sql(
                    "INSERT INTO keyledger_ledger_tree (name, position, size, peaks) "
                    "VALUES (?, 0, 0, ?) ON CONFLICT (name) DO NOTHING"
                ),
                (_TREE, b""),
            )

    def _tree_made(self) -> bool:
        with self._datastore.transaction(commit=False) as curs:
            curs.execute(self._sql("SELECT 1 FROM keyledger_ledger_tree WHERE name = ?"), (_TREE,))
            return curs.fetchone() is not None

    def exist(self) -> bool:
        """Whether the ledger's tables are there (a read: no write lock on SQLite)."""
        try:
            self.tree()
        except Exception as exc:  # the driver's "no such table" / undefined_table
            if "keyledger_ledger_tree" in str(exc) or "no such table" in str(exc):
                return False
            raise
        return True

    def tree(self) -> TreeState:
        with self._datastore.transaction(commit=False) as curs:
            curs.execute(
                self._sql("SELECT position, size, peaks FROM keyledger_ledger_tree WHERE name = ?"),
                (_TREE,),
            )
            row = curs.fetchone()
        if row is None:
            return TreeState(0, 0, [])
        peaks = bytes(row["peaks"])
        return TreeState(
            int(row["position"]),
            int(row["size"]),
            [peaks[i : i + HASH_SIZE] for i in range(0, len(peaks), HASH_SIZE)],
        )

    def tiles(self, keys: Iterable[tuple[int, int]]) -> list[TileWrite]:
        found = []
        with self._datastore.transaction(commit=False) as curs:
            for level, index in keys:
                curs.execute(
                    self._sql(
                        "SELECT hashes, positions FROM keyledger_ledger_tiles "
                        "WHERE level = ? AND idx = ?"
                    ),
                    (level, index),
                )
                row = curs.fetchone()
                if row is not None:
                    found.append(
                        TileWrite(level, index, bytes(row["hashes"]), bytes(row["positions"]))
                    )
        return found

    def tile(self, level: int, index: int) -> bytes:
        tiles = self.tiles([(level, index)])
        return tiles[0].hashes if tiles else b""

    def advance(
        self,
        old: TreeState,
        new: TreeState,
        writes: Sequence[TileWrite],
        checkpoints: Sequence[StoredCheckpoint] = (),
    ) -> None:
        """Store the tiles and the new edge at once, if the edge is still `old`."""
        with self._datastore.transaction(commit=True) as curs:
            curs.execute(
                self._sql(
                    "UPDATE keyledger_ledger_tree SET position = ?, size = ?, peaks = ? "
                    "WHERE name = ? AND position = ? AND size = ?"
                ),
                (new.position, new.size, b"".join(new.peaks), _TREE, old.position, old.size),
            )
            if getattr(curs, "sqlite_cursor", curs).rowcount != 1:
                raise LedgerMoved(f"the ledger moved on from position {old.position}")
            curs.executemany(
                self._sql(
                    "INSERT INTO keyledger_ledger_tiles "
                    "(level, idx, hashes, positions, first_position) VALUES (?, ?, ?, ?, ?) "
                    "ON CONFLICT (level, idx) DO UPDATE SET hashes = excluded.hashes, "
                    "positions = excluded.positions, first_position = excluded.first_position"
                ),
                [(w.level, w.index, w.hashes, w.positions, w.first_position) for w in writes],
            )
            if checkpoints:
                curs.executemany(
                    self._sql(
                        "INSERT INTO keyledger_ledger_checkpoints "
                        "(size, root, note, position, signed_at) VALUES (?, ?, ?, ?, ?) "
                        "ON CONFLICT (size) DO NOTHING"
                    ),
                    [(c.size, c.root, c.note, c.position, c.signed_at) for c in checkpoints],
                )

    def leaf_index(self, position: int) -> int | None:
        """The leaf index of the event with notification id `position`, if the tree has it."""
        with self._datastore.transaction(commit=False) as curs:
            curs.execute(
                self._sql(
                    "SELECT idx, positions FROM keyledger_ledger_tiles WHERE level = 0 "
                    "AND first_position <= ? ORDER BY first_position DESC LIMIT 1"
                ),
                (position,),
            )
            row = curs.fetchone()
        if row is None:
            return None
        raw = bytes(row["positions"])
        positions = [int.from_bytes(raw[i : i + 8], "big") for i in range(0, len(raw), 8)]
        offset = bisect.bisect_left(positions, position)
        if offset == len(positions) or positions[offset] != position:
            return None
        return int(row["idx"]) * TILE_WIDTH + offset

    def leaves(self, after: int, limit: int) -> list[tuple[int, bytes, str]]:
        """Stored events after `after` as (position, leaf hash, topic), in order.

        PostgreSQL computes the leaf itself (`domain.ledger.row_leaf`'s bytes, in SQL), so
        32 bytes cross the wire instead of the state and no Python runs per event for it;
        SQLite has no SHA-256, so its rows are hashed here.
        """
        if self._postgres:
            statement = (
                "SELECT notification_id, sha256('\\x00'::bytea || int8send(notification_id) "  # noqa: S608
                "|| uuid_send(originator_id) || int8send(originator_version) "
                "|| substring(int4send(octet_length(coalesce(topic, ''))) from 3 for 2) "
                "|| convert_to(coalesce(topic, ''), 'UTF8') "
                "|| sha256(coalesce(state, ''::bytea))), coalesce(topic, '') "
                f"FROM {self._events} WHERE notification_id > %s "
                "ORDER BY notification_id LIMIT %s"
            )
            with self._datastore.transaction(commit=False) as curs:
                curs.row_factory = tuple_row
                curs.execute(statement, (after, limit))
                return [(row[0], bytes(row[1]), row[2]) for row in curs.fetchall()]
        return [
            (r[0], row_leaf(r[0], r[1], r[2], r[3], state_hash(r[4])), topic_text(r[3]))
            for r in self.stored_rows(after, limit)
        ]

    def stored_rows(self, after: int, limit: int) -> list[tuple[int, Any, int, str, bytes]]:
        """Stored events after `after` as (position, originator id, version, topic, state),
        in order, read as the bytes they are. In SQLite an edited row can hold a state of
        type TEXT that is not UTF-8 (`state || x` makes one), which the event store's own
        reads cannot decode: here it is read as bytes, so verification reports it."""
        if self._postgres:
            statement = (
                "SELECT notification_id, originator_id, originator_version, topic, state "  # noqa: S608
                f"FROM {self._events} WHERE notification_id > %s "
                "ORDER BY notification_id LIMIT %s"
            )
        else:
            statement = (
                "SELECT rowid, originator_id, originator_version, CAST(topic AS BLOB), "  # noqa: S608
                f"CAST(state AS BLOB) FROM {self._events} WHERE rowid > ? ORDER BY rowid LIMIT ?"
            )
        with self._datastore.transaction(commit=False) as curs:
            if self._postgres:
                curs.row_factory = tuple_row
            curs.execute(statement, (after, limit))
            rows = curs.fetchall()
        return [
            (
                int(r[0]),
                r[1],
                int(r[2]),
                r[3] if isinstance(r[3], str) else bytes(r[3] or b"").decode("utf-8", "replace"),
                b"" if r[4] is None else bytes(r[4]),
            )
            for r in rows
        ]

    def position_of(self, originator_id: UUID, version: int) -> int | None:
        """The notification id of one stored event, by its aggregate id and version."""
        column = "notification_id" if self._postgres else "rowid"
        statement = (
            f"SELECT {column} AS position FROM {self._events} "  # noqa: S608 - not user input
            "WHERE originator_id = ? AND originator_version = ?"
        )
        with self._datastore.transaction(commit=False) as curs:
            curs.execute(
                self._sql(statement),
                (originator_id if self._postgres else originator_id.hex, version),
            )
            row = curs.fetchone()
        return None if row is None else int(row["position"])

    def checkpoints(self, *, after_size: int = -1, limit: int = 100) -> list[StoredCheckpoint]:
        with self._datastore.transaction(commit=False) as curs:
            curs.execute(
                self._sql(
                    "SELECT size, root, note, position, signed_at FROM "
                    "keyledger_ledger_checkpoints WHERE size > ? ORDER BY size LIMIT ?"
                ),
                (after_size, limit),
            )
            rows = curs.fetchall()
        return [
            StoredCheckpoint(
                int(r["size"]), bytes(r["root"]), r["note"], int(r["position"]), r["signed_at"]
            )
            for r in rows
        ]

    def latest_checkpoint(self) -> StoredCheckpoint | None:
        with self._datastore.transaction(commit=False) as curs:
            curs.execute(
                "SELECT size, root, note, position, signed_at FROM keyledger_ledger_checkpoints "
                "ORDER BY size DESC LIMIT 1"
            )
            r = curs.fetchone()
        if r is None:
            return None
        return StoredCheckpoint(
            int(r["size"]), bytes(r["root"]), r["note"], int(r["position"]), r["signed_at"]
        )

    def recorded(self) -> Recorded:
        """The leaves as the tree recorded them, from its leaf tiles."""
        size = self.tree().size
        with self._datastore.transaction(commit=False) as curs:
            curs.execute(
                "SELECT hashes, positions FROM keyledger_ledger_tiles WHERE level = 0 ORDER BY idx"
            )
            tiles = [(bytes(r["hashes"]), bytes(r["positions"])) for r in curs.fetchall()]
        return recorded_from_tiles(tiles, size)
