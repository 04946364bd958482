"""The ledger: what a leaf of the event log's Merkle tree commits to, and how the tree is kept.

A leaf commits to an event's identity and to the hash of its stored state, not to the state
itself, so that a later retention of old token events can drop a state and keep its leaf:

    entry = position (8 bytes, big-endian: the notification id)
         || originator id (16 bytes) || originator version (8 bytes, big-endian)
         || topic length (2 bytes, big-endian) || topic (UTF-8)
         || SHA-256(stored state) (32 bytes)

The tree keeps the hashes of its perfect subtrees in tiles (as Go's checksum database and
C2SP tlog-tiles do): a tile at tile level L holds up to 256 consecutive node hashes of tree
level 8·L, so 256 leaves cost one row; a node between two tile levels is folded on demand.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Callable
from dataclasses import dataclass
from uuid import UUID

from domain.merkle_tree import HASH_SIZE, CompactRange, leaf_hash, node_hash

TILE_HEIGHT = 8
TILE_WIDTH = 1 << TILE_HEIGHT
_HEADER = struct.Struct(">Q16sQH")

# Reads the hashes of one tile (tile level, tile index); shorter than full while it grows.
TileReader = Callable[[int, int], bytes]


class LedgerError(ValueError):
    """A request the ledger's tree cannot answer (an unknown event, a size it never had)."""


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    """One stored event as its leaf sees it."""

    position: int
    originator_id: UUID
    version: int
    topic: str
    state_hash: bytes

    def encoded(self) -> bytes:
        topic = self.topic.encode()
        header = _HEADER.pack(self.position, self.originator_id.bytes, self.version, len(topic))
        return header + topic + self.state_hash

    @classmethod
    def of(
        cls, position: int, originator_id: UUID, version: int, topic: str, state: bytes
    ) -> LedgerEntry:
        return cls(position, originator_id, version, topic, hashlib.sha256(state).digest())

    @classmethod
    def of_row(
        cls, position: int, originator_id: object, version: int, topic: object, state: object
    ) -> LedgerEntry:
        """From a stored row as the database returns it, however it was edited underneath:
        a text or NULL state, a text id (SQLite) are hashed as they are, never refused."""
        identity = originator_id if isinstance(originator_id, UUID) else UUID(str(originator_id))
        return cls.of(position, identity, int(version), topic_text(topic), _state_bytes(state))

    @classmethod
    def decode(cls, data: bytes) -> LedgerEntry:
        position, originator, version, length = _HEADER.unpack_from(data)
        end = _HEADER.size + length
        if len(data) != end + HASH_SIZE:
            raise LedgerError("a ledger entry is a header, its topic and a 32-byte state hash")
        topic = data[_HEADER.size : end].decode()
        return cls(position, UUID(bytes=originator), version, topic, data[end:])


def _state_bytes(state: object) -> bytes:
    if isinstance(state, bytes):
        return state
    if isinstance(state, bytearray | memoryview):
        return bytes(state)
    return b"" if state is None else str(state).encode()


def topic_text(topic: object) -> str:
    """A stored topic as text (a NULL one, edited in underneath, as empty)."""
    return "" if topic is None else str(topic)


def state_hash(state: object) -> bytes:
    """SHA-256 of a stored state as the database returns it (see `LedgerEntry.of_row`)."""
    return _sha256(_state_bytes(state)).digest()


def row_leaf(
    position: int, originator_id: object, version: int, topic: object, hashed_state: bytes
) -> bytes:
    """The leaf hash of a stored row whose state is already hashed: the same as
    `leaf_hash(LedgerEntry.of_row(...).encoded())` without the objects in between (the
    builder's hot path; a property test holds the two equal)."""
    raw = originator_id.bytes if isinstance(originator_id, UUID) else UUID(str(originator_id)).bytes
    name = topic_text(topic).encode()
    header = _HEADER.pack(position, raw, int(version), len(name))
    return _sha256(b"\x00" + header + name + bytes(hashed_state)).digest()


_sha256 = hashlib.sha256


def tile_of(level: int, index: int) -> tuple[int, int, int]:
    """Where the perfect node (level, index) starts: tile level, tile index, offset within."""
    tile_level, height = divmod(level, TILE_HEIGHT)
    first = index << height  # its first node on the tile's own level
    return tile_level, first // TILE_WIDTH, first % TILE_WIDTH


def node_from_tiles(level: int, index: int, read: TileReader) -> bytes:
    """The hash of a perfect subtree, from the tile holding its descendants 8·L levels up."""
    tile_level, tile_index, offset = tile_of(level, index)
    height = level - tile_level * TILE_HEIGHT
    hashes = read(tile_level, tile_index)
    count = 1 << height
    end = (offset + count) * HASH_SIZE
    if len(hashes) < end:
        raise LedgerError(f"the tree has no complete node at level {level}, index {index}")
    nodes = [hashes[i : i + HASH_SIZE] for i in range(offset * HASH_SIZE, end, HASH_SIZE)]
    while len(nodes) > 1:
        nodes = [node_hash(nodes[i], nodes[i + 1]) for i in range(0, len(nodes), 2)]
    return nodes[0]


@dataclass(frozen=True, slots=True)
class TileWrite:
    """A tile's whole content after a batch: hashes, and for leaf tiles their positions."""

    level: int
    index: int
    hashes: bytes
    positions: bytes = b""

    @property
    def first_position(self) -> int | None:
        return int.from_bytes(self.positions[:8], "big") if self.positions else None


class TreeGrowth:
    """Appends entries to the tree and says which tiles changed; pure, the caller stores.

    It holds the right edge (`CompactRange`) and the open tile of every tile level, so a
    batch costs one hash per leaf plus about one per node, and one write per touched tile.
    """

    def __init__(self, size: int, peaks: list[bytes], open_tiles: list[TileWrite]) -> None:
        self.tree = CompactRange(size, peaks)
        self._open = {
            tile.level: (bytearray(tile.hashes), bytearray(tile.positions)) for tile in open_tiles
        }
        self._touched: set[int] = set()
        self._full: list[TileWrite] = []

    @staticmethod
    def open_tiles(size: int) -> list[tuple[int, int]]:
        """For a tree of `size` leaves, the partly filled tile of each tile level."""
        tiles, level = [], 0
        while nodes := size >> (level * TILE_HEIGHT):
            if nodes % TILE_WIDTH:
                tiles.append((level, nodes // TILE_WIDTH))
            level += 1
        return tiles

    def append(self, entry: LedgerEntry) -> None:
        self.append_leaf(entry.position, leaf_hash(entry.encoded()))

    def append_leaf(self, position: int, leaf: bytes) -> None:
        completed = self.tree.append(leaf, TILE_HEIGHT)
        leaves, positions = self._open.setdefault(0, (bytearray(), bytearray()))
        if not completed[0][1] % TILE_WIDTH and leaves:  # a new leaf tile after a full one
            self._flush(0, completed[0][1] // TILE_WIDTH - 1)
        leaves += leaf
        positions += position.to_bytes(8, "big")
        self._touched.add(0)
        for level, index, digest in completed[1:]:  # one in 256 leaves
            tile_level = level // TILE_HEIGHT
            hashes, _ = self._open.setdefault(tile_level, (bytearray(), bytearray()))
            if not index % TILE_WIDTH and hashes:
                self._flush(tile_level, index // TILE_WIDTH - 1)
            hashes += digest
            self._touched.add(tile_level)

    def _flush(self, level: int, index: int) -> None:
        hashes, positions = self._open[level]
        self._full.append(TileWrite(level, index, bytes(hashes), bytes(positions)))
        hashes.clear()
        positions.clear()

    def take_writes(self) -> list[TileWrite]:
        """The tiles completed or changed since the last call, each whole."""
        writes, self._full = self._full, []
        for level in sorted(self._touched):
            hashes, positions = self._open[level]
            index = ((self.tree.size >> (level * TILE_HEIGHT)) - 1) // TILE_WIDTH
            writes.append(TileWrite(level, index, bytes(hashes), bytes(positions)))
            if len(hashes) == TILE_WIDTH * HASH_SIZE:  # stored whole: never written again
                hashes.clear()
                positions.clear()
        self._touched.clear()
        return writes
