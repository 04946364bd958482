"""The ledger's Merkle tree against RFC 9162 §2.1, written out plainly here as the oracle."""

from __future__ import annotations

import hashlib

from hypothesis import assume, given
from hypothesis import strategies as st

from domain.merkle_tree import (
    EMPTY_ROOT,
    CompactRange,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    node_hash,
    root_of,
    verify_consistency,
    verify_inclusion,
)


# --- the reference: RFC 9162 §2.1.1, §2.1.3.1 and §2.1.4.1 as recursive definitions -----------
def _hash(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def _k(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def mth(entries: list[bytes]) -> bytes:
    if not entries:
        return _hash(b"")
    if len(entries) == 1:
        return _hash(b"\x00" + entries[0])
    k = _k(len(entries))
    return _hash(b"\x01" + mth(entries[:k]) + mth(entries[k:]))


def path(m: int, entries: list[bytes]) -> list[bytes]:
    if len(entries) == 1:
        return []
    k = _k(len(entries))
    if m < k:
        return [*path(m, entries[:k]), mth(entries[k:])]
    return [*path(m - k, entries[k:]), mth(entries[:k])]


def subproof(m: int, entries: list[bytes], whole: bool) -> list[bytes]:
    n = len(entries)
    if m == n:
        return [] if whole else [mth(entries)]
    k = _k(n)
    if m <= k:
        return [*subproof(m, entries[:k], whole), mth(entries[k:])]
    return [*subproof(m - k, entries[k:], False), mth(entries[:k])]


# --- a tree built the way the ledger builds it: appends, keeping completed perfect subtrees ---
def built(entries: list[bytes]) -> tuple[CompactRange, dict[tuple[int, int], bytes]]:
    tree, nodes = CompactRange(), {}
    for entry in entries:
        for level, index, digest in tree.append(leaf_hash(entry)):
            nodes[level, index] = digest
    return tree, nodes


entry_lists = st.lists(st.binary(max_size=8), max_size=70)
nonempty_entry_lists = st.lists(st.binary(max_size=8), min_size=1, max_size=70)


def test_the_hashing_keeps_leaves_and_nodes_apart_as_rfc_9162_says() -> None:
    assert hashlib.sha256(b"").digest() == EMPTY_ROOT
    assert leaf_hash(b"abc") == hashlib.sha256(b"\x00abc").digest()
    assert (
        node_hash(b"l" * 32, b"r" * 32) == hashlib.sha256(b"\x01" + b"l" * 32 + b"r" * 32).digest()
    )
    # a node's preimage passed off as a leaf hashes differently
    assert leaf_hash(b"\x01" + b"l" * 32 + b"r" * 32) != node_hash(b"l" * 32, b"r" * 32)


def test_the_roots_match_the_published_rfc_6962_test_vectors() -> None:
    inputs = [b"", b"\x00", b"\x10", b"\x20\x21", b"\x30\x31", b"\x40\x41\x42\x43"]
    inputs += [bytes(range(0x50, 0x58)), bytes(range(0x60, 0x70))]
    roots = {
        1: "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        3: "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        8: "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    }
    for size, expected in roots.items():
        assert root_of([leaf_hash(entry) for entry in inputs[:size]]).hex() == expected
    _, nodes = built(inputs)
    assert [h.hex()[:16] for h in inclusion_proof(0, 8, lambda lv, i: nodes[lv, i])] == [
        "96a296d224f285c6",
        "5f083f0a1a33ca07",
        "6b47aaf29ee3c2af",
    ]


@given(entry_lists)
def test_the_root_of_any_list_is_its_merkle_tree_hash(entries: list[bytes]) -> None:
    assert root_of([leaf_hash(e) for e in entries]) == mth(entries)


@given(entry_lists)
def test_a_tree_grown_by_appends_has_the_merkle_tree_hash_at_every_size(
    entries: list[bytes],
) -> None:
    tree = CompactRange()
    for size, entry in enumerate(entries, start=1):
        tree.append(leaf_hash(entry))
        assert (tree.size, tree.root()) == (size, mth(entries[:size]))


@given(entry_lists)
def test_every_completed_subtree_reported_is_the_hash_of_its_leaves(entries: list[bytes]) -> None:
    _, nodes = built(entries)
    for (level, index), digest in nodes.items():
        assert digest == mth(entries[index << level : (index + 1) << level])
    assert len(nodes) == sum(len(entries) >> level for level in range(len(entries).bit_length()))


@given(entry_lists)
def test_a_compact_range_resumes_from_its_size_and_peaks(entries: list[bytes]) -> None:
    half = len(entries) // 2
    first, _ = built(entries[:half])
    resumed = CompactRange(first.size, first.peaks)
    for entry in entries[half:]:
        resumed.append(leaf_hash(entry))
    assert resumed.root() == mth(entries)


@given(nonempty_entry_lists, st.data())
def test_inclusion_proofs_are_rfc_paths_and_verify(
    entries: list[bytes], data: st.DataObject
) -> None:
    size = data.draw(st.integers(1, len(entries)))
    index = data.draw(st.integers(0, size - 1))
    _, nodes = built(entries)
    proof = inclusion_proof(index, size, lambda lv, i: nodes[lv, i])
    assert proof == path(index, entries[:size])
    assert verify_inclusion(leaf_hash(entries[index]), index, size, proof, mth(entries[:size]))


@given(nonempty_entry_lists, st.data())
def test_an_inclusion_proof_fails_for_any_other_leaf_index_size_or_path(
    entries: list[bytes], data: st.DataObject
) -> None:
    size = data.draw(st.integers(1, len(entries)))
    index = data.draw(st.integers(0, size - 1))
    root, leaf = mth(entries[:size]), leaf_hash(entries[index])
    proof = path(index, entries[:size])
    other = data.draw(st.binary(min_size=1, max_size=8))
    assume(leaf_hash(other) != leaf)
    assert not verify_inclusion(leaf_hash(other), index, size, proof, root)
    wrong_index = data.draw(st.integers(0, size).filter(lambda i: i != index))
    assume(wrong_index >= size or leaf_hash(entries[wrong_index]) != leaf)
    assert not verify_inclusion(leaf, wrong_index, size, proof, root)
    if proof:
        position = data.draw(st.integers(0, len(proof) - 1))
        tampered = [*proof[:position], _hash(proof[position]), *proof[position + 1 :]]
        assert not verify_inclusion(leaf, index, size, tampered, root)
        assert not verify_inclusion(leaf, index, size, proof[:-1], root)
    assert not verify_inclusion(leaf, index, size, [*proof, root], root)


@given(nonempty_entry_lists, st.data())
def test_consistency_proofs_are_rfc_proofs_and_verify(
    entries: list[bytes], data: st.DataObject
) -> None:
    new_size = data.draw(st.integers(1, len(entries)))
    old_size = data.draw(st.integers(1, new_size))
    _, nodes = built(entries)
    proof = consistency_proof(old_size, new_size, lambda lv, i: nodes[lv, i])
    assert proof == subproof(old_size, entries[:new_size], True)
    old_root, new_root = mth(entries[:old_size]), mth(entries[:new_size])
    assert verify_consistency(old_size, new_size, old_root, new_root, proof)


@given(nonempty_entry_lists, st.data())
def test_a_consistency_proof_fails_when_history_was_rewritten(
    entries: list[bytes], data: st.DataObject
) -> None:
    new_size = data.draw(st.integers(2, max(2, len(entries))))
    assume(new_size <= len(entries))
    old_size = data.draw(st.integers(1, new_size - 1))
    changed = data.draw(st.integers(0, old_size - 1))
    rewritten = [*entries[:changed], entries[changed] + b"!", *entries[changed + 1 :]]
    old_root = mth(entries[:old_size])
    proof = subproof(old_size, rewritten[:new_size], True)
    assert not verify_consistency(old_size, new_size, old_root, mth(rewritten[:new_size]), proof)
    honest = subproof(old_size, entries[:new_size], True)
    position = data.draw(st.integers(0, len(honest) - 1))
    tampered = [*honest[:position], _hash(honest[position]), *honest[position + 1 :]]
    assert not verify_consistency(old_size, new_size, old_root, mth(entries[:new_size]), tampered)


def test_equal_sizes_are_consistent_only_with_equal_roots_and_no_proof() -> None:
    root = mth([b"a", b"b"])
    assert verify_consistency(2, 2, root, root, [])
    assert not verify_consistency(2, 2, root, mth([b"a", b"c"]), [])
    assert not verify_consistency(3, 2, root, root, [root])
    assert verify_consistency(0, 5, EMPTY_ROOT, root, [])
