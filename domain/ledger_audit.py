"""Auditing the ledger: does the event log still give the tree its checkpoints signed?

Two records of the past are compared: the leaves recomputed now from the events, and the
leaves recorded when the events were folded in (the tree's leaf tiles, trusted only as far
as they still give the signed roots). The first index where they part is classified:

- modified:  the same position holds an event whose identity or state changed;
- deleted:   a recorded event is missing and the rest follows one place earlier;
- inserted:  an event is present that was never recorded, and the rest follows one later;
- reordered: events were recorded, but at other positions (two swapped, say);
- truncated: the log ends before the recorded tree does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from domain.ledger import LedgerEntry
from domain.merkle_tree import HASH_SIZE, CompactRange, leaf_hash

REORDER_WINDOW = 1024  # how far apart two swapped events may lie and still be named as such


@dataclass(frozen=True)
class Difference:
    kind: str
    index: int
    position: int | None
    detail: str


@dataclass(frozen=True)
class Recorded:
    """The leaves as the tree recorded them: hashes and notification positions, by index."""

    hashes: bytes
    positions: Sequence[int]

    def __len__(self) -> int:
        return len(self.positions)

    def hash(self, index: int) -> bytes:
        return self.hashes[index * HASH_SIZE : (index + 1) * HASH_SIZE]


def leaves_of(entries: Sequence[LedgerEntry]) -> list[bytes]:
    return [leaf_hash(entry.encoded()) for entry in entries]


def roots_at(leaves: Sequence[bytes], sizes: Sequence[int]) -> dict[int, bytes]:
    """The tree's root after each of `sizes` leaves (sizes beyond the leaves are left out)."""
    wanted = sorted({s for s in sizes if s <= len(leaves)})
    roots: dict[int, bytes] = {}
    tree = CompactRange()
    if 0 in wanted:
        roots[0] = tree.root()
    for count, leaf in enumerate(leaves, start=1):
        tree.append(leaf)
        if wanted and count == wanted[0]:
            roots[wanted.pop(0)] = tree.root()
    return roots


def first_difference(
    recorded: Recorded, entries: Sequence[LedgerEntry], leaves: Sequence[bytes]
) -> Difference | None:
    """Where the recomputed leaves (of `entries`) first part from the recorded ones, and how."""
    index = next(
        (i for i in range(min(len(recorded), len(leaves))) if leaves[i] != recorded.hash(i)),
        None,
    )
    if index is None:
        if len(entries) < len(recorded):
            missing = len(recorded) - len(entries)
            return Difference(
                "truncated",
                len(entries),
                recorded.positions[len(entries)],
                f"the log ends {missing} event(s) before the recorded tree",
            )
        return None
    return _classify(recorded, entries, index)


def _classify(recorded: Recorded, entries: Sequence[LedgerEntry], i: int) -> Difference:
    """Name the change at index `i` by where the events found there were recorded.

    Positions may have been renumbered to make room, so an event is recognised by its
    content: its leaf, recomputed at a recorded position, is that position's recorded leaf.
    """

    def recorded_at(entry: LedgerEntry, j: int) -> bool:
        if j >= len(recorded):
            return False
        return leaf_hash(replace(entry, position=recorded.positions[j]).encoded()) == (
            recorded.hash(j)
        )

    expected = recorded.positions[i]
    found = entries[i]
    following = entries[i + 1] if i + 1 < len(entries) else None
    if recorded_at(found, i + 1):
        if following is not None and recorded_at(following, i):
            return Difference(
                "reordered", i, expected, f"the events recorded at indexes {i} and {i + 1} swapped"
            )
        return Difference(
            "deleted", i, expected, f"the event recorded at position {expected} is gone"
        )
    if following is not None and recorded_at(following, i):
        return Difference(
            "inserted",
            i,
            found.position,
            f"an event now at position {found.position} ({found.topic}) was never recorded",
        )
    for j in range(i + 2, min(len(recorded), i + REORDER_WINDOW)):
        if recorded_at(found, j):
            return Difference(
                "reordered",
                i,
                expected,
                f"the event recorded at index {j} (position {recorded.positions[j]}) "
                f"now stands at index {i}",
            )
    return Difference(
        "modified",
        i,
        expected,
        f"the event at position {found.position} ({found.topic}, {found.originator_id} "
        f"v{found.version}) is not the one recorded at position {expected}",
    )


def recorded_from_tiles(tiles: Sequence[tuple[bytes, bytes]], size: int) -> Recorded:
    """The first `size` recorded leaves, from leaf tiles (hashes, positions) in index order."""
    hashes = b"".join(h for h, _ in tiles)[: size * HASH_SIZE]
    raw = b"".join(p for _, p in tiles)[: size * 8]
    return Recorded(hashes, [int.from_bytes(raw[k : k + 8], "big") for k in range(0, len(raw), 8)])


def same_tree(recorded: Recorded, size: int, root: bytes) -> bool:
    """Whether the first `size` recorded leaves give `root` (so they can be trusted that far)."""
    if size > len(recorded):
        return False
    tree = CompactRange()
    for index in range(size):
        tree.append(recorded.hash(index))
    return tree.root() == root
