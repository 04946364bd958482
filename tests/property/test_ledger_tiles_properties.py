"""The ledger's tiles hold every perfect subtree, however the log is cut into batches."""

from __future__ import annotations

import uuid

from hypothesis import given, settings
from hypothesis import strategies as st

from domain.ledger import (
    TILE_WIDTH,
    LedgerEntry,
    TileWrite,
    TreeGrowth,
    node_from_tiles,
    row_leaf,
    state_hash,
)
from domain.merkle_tree import leaf_hash, root_of


def entries(count: int, start: int = 1) -> list[LedgerEntry]:
    return [
        LedgerEntry.of(
            start + 3 * i, uuid.UUID(int=i), i, "domain.client:Client.Registered", b"s%d" % i
        )
        for i in range(count)
    ]


def grow(
    items: list[LedgerEntry], cuts: list[int]
) -> tuple[TreeGrowth, dict[tuple[int, int], TileWrite]]:
    """Append in batches split at `cuts`, restarting from the stored state after each batch."""
    store: dict[tuple[int, int], TileWrite] = {}
    growth = TreeGrowth(0, [], [])
    done = 0
    for cut in [*sorted(set(cuts)), len(items)]:
        for entry in items[done:cut]:
            growth.append(entry)
        done = max(done, cut)
        for write in growth.take_writes():
            store[write.level, write.index] = write
        size, peaks = growth.tree.size, list(growth.tree.peaks)
        growth = TreeGrowth(size, peaks, [store[key] for key in TreeGrowth.open_tiles(size)])
    return growth, store


sizes = st.integers(0, 3 * TILE_WIDTH + 7)


@settings(max_examples=40, deadline=None)
@given(sizes, st.lists(st.integers(0, 3 * TILE_WIDTH + 7), max_size=6))
def test_every_perfect_subtree_reads_back_from_the_tiles(size: int, cuts: list[int]) -> None:
    items = entries(size)
    leaves = [leaf_hash(e.encoded()) for e in items]
    growth, store = grow(items, [c for c in cuts if c <= size])
    assert growth.tree.root() == root_of(leaves)

    def read(level: int, index: int) -> bytes:
        tile = store.get((level, index))
        return tile.hashes if tile else b""

    for level in range(size.bit_length()):
        for index in range(size >> level):
            expected = root_of(leaves[index << level : (index + 1) << level])
            assert node_from_tiles(level, index, read) == expected


@settings(max_examples=40, deadline=None)
@given(sizes, st.lists(st.integers(0, 3 * TILE_WIDTH + 7), max_size=6))
def test_leaf_tiles_name_the_position_of_every_leaf(size: int, cuts: list[int]) -> None:
    items = entries(size)
    _, store = grow(items, [c for c in cuts if c <= size])
    positions = b"".join(store[0, i].positions for i in range(-(-size // TILE_WIDTH)))
    assert [int.from_bytes(positions[i : i + 8], "big") for i in range(0, len(positions), 8)] == [
        e.position for e in items
    ]
    for index in range(-(-size // TILE_WIDTH)):
        assert store[0, index].first_position == items[index * TILE_WIDTH].position


@given(
    st.integers(0, 2**63 - 1),
    st.uuids(),
    st.integers(0, 2**63 - 1),
    st.text(max_size=40),
    st.binary(max_size=64),
)
def test_an_entry_encodes_and_decodes_unchanged(
    position: int, originator: uuid.UUID, version: int, topic: str, state: bytes
) -> None:
    entry = LedgerEntry.of(position, originator, version, topic, state)
    assert LedgerEntry.decode(entry.encoded()) == entry


def test_an_entry_commits_to_each_part_of_the_event() -> None:
    base = LedgerEntry.of(7, uuid.UUID(int=1), 2, "t", b"state")
    variants = [
        LedgerEntry.of(8, uuid.UUID(int=1), 2, "t", b"state"),
        LedgerEntry.of(7, uuid.UUID(int=2), 2, "t", b"state"),
        LedgerEntry.of(7, uuid.UUID(int=1), 3, "t", b"state"),
        LedgerEntry.of(7, uuid.UUID(int=1), 2, "u", b"state"),
        LedgerEntry.of(7, uuid.UUID(int=1), 2, "t", b"State"),
    ]
    assert len({leaf_hash(e.encoded()) for e in [base, *variants]}) == 6


@given(
    st.integers(0, 2**63 - 1),
    st.uuids(),
    st.integers(0, 2**63 - 1),
    st.text(max_size=40),
    st.one_of(st.binary(max_size=64), st.text(max_size=20), st.none()),
    st.booleans(),
)
def test_the_builders_fast_leaf_is_the_entrys_leaf(
    position: int, originator: uuid.UUID, version: int, topic: str, state: object, as_text: bool
) -> None:
    identity: object = str(originator) if as_text else originator  # SQLite stores text ids
    expected = leaf_hash(LedgerEntry.of_row(position, identity, version, topic, state).encoded())
    assert row_leaf(position, identity, version, topic, state_hash(state)) == expected
