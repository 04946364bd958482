"""The Merkle tree of RFC 9162 §2.1: hashing, compact ranges, inclusion and consistency proofs.

A tree over n leaves is the Merkle Tree Hash MTH(D[n]) of §2.1.1. Leaves and interior nodes are
hashed with different prefixes ("domain separation") so that a leaf can never be passed off
as a node. Proofs are built from the hashes of *perfect* subtrees (2^level leaves starting at
a multiple of 2^level), which a store keeps; every other subtree hash is folded from those.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence

HASH_SIZE = 32
# §2.1.1: "The hash of an empty list is the hash of an empty string: MTH({}) = HASH()."
EMPTY_ROOT = hashlib.sha256(b"").digest()

# Reads the hash of the perfect subtree at (level, index): leaves index*2^level ... + 2^level.
PerfectNodes = Callable[[int, int], bytes]


class ProofError(ValueError):
    """A proof asked for sizes or an index the tree does not have."""


def leaf_hash(entry: bytes) -> bytes:
    """§2.1.1: MTH({d(0)}) = HASH(0x00 || d(0))."""
    return hashlib.sha256(b"\x00" + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """§2.1.1: MTH(D[n]) = HASH(0x01 || MTH(D[0:k]) || MTH(D[k:n]))."""
    return _node(b"\x01" + left + right).digest()


_node = hashlib.sha256


def split_point(n: int) -> int:
    """§2.1.1: k, the largest power of two smaller than n (n > 1)."""
    return 1 << ((n - 1).bit_length() - 1)


def root_of(leaf_hashes: Sequence[bytes]) -> bytes:
    """MTH of the leaves, level by level: a lone right node rises unchanged (same tree)."""
    if not leaf_hashes:
        return EMPTY_ROOT
    level = list(leaf_hashes)
    while len(level) > 1:
        paired = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            paired.append(level[-1])
        level = paired
    return level[0]


class CompactRange:
    """The right edge of a growing tree: one perfect-subtree hash per set bit of its size.

    Appending a leaf merges equal-sized subtrees like a binary counter, so the root of a tree
    of any size is known without keeping its leaves; `completed` reports every perfect
    subtree an append finished, for a store that serves proofs.
    """

    def __init__(self, size: int = 0, peaks: Iterable[bytes] = ()) -> None:
        self.size = size
        self.peaks = list(peaks)  # largest subtree first
        if len(self.peaks) != bin(size).count("1"):
            raise ValueError(f"a tree of {size} leaves has {bin(size).count('1')} peaks")

    def append(self, leaf: bytes, every: int = 1) -> list[tuple[int, int, bytes]]:
        """Add a leaf hash; return the perfect subtrees completed, as (level, index, hash),
        at the levels that are multiples of `every` (a tile store keeps no others)."""
        size, peaks = self.size, self.peaks
        completed = [(0, size, leaf)]
        node, level = leaf, 0
        while (size >> level) & 1:
            node = _node(b"\x01" + peaks.pop() + node).digest()
            level += 1
            if level % every == 0:
                completed.append((level, size >> level, node))
        peaks.append(node)
        self.size = size + 1
        return completed

    def root(self) -> bytes:
        if not self.peaks:
            return EMPTY_ROOT
        node = self.peaks[-1]
        for peak in reversed(self.peaks[:-1]):
            node = node_hash(peak, node)
        return node


def subtree_hash(start: int, end: int, nodes: PerfectNodes) -> bytes:
    """MTH(D[start:end]) for a range the §2.1 recursion produces (start aligned to its split)."""
    n = end - start
    if n <= 0:
        return EMPTY_ROOT
    if n & (n - 1) == 0 and start % n == 0:
        return nodes(n.bit_length() - 1, start // n)
    k = split_point(n)
    return node_hash(subtree_hash(start, start + k, nodes), subtree_hash(start + k, end, nodes))


def inclusion_proof(index: int, size: int, nodes: PerfectNodes) -> list[bytes]:
    """§2.1.3.1 PATH(m, D[n]): the siblings from leaf `index` up to the root of `size` leaves."""
    if not 0 <= index < size:
        raise ProofError(f"leaf {index} is not in a tree of {size} leaves")
    path: list[bytes] = []
    start, end = 0, size
    while end - start > 1:
        k = split_point(end - start)
        if index < start + k:
            path.append(subtree_hash(start + k, end, nodes))
            end = start + k
        else:
            path.append(subtree_hash(start, start + k, nodes))
            start += k
    path.reverse()  # PATH lists the leaf's sibling first
    return path


def consistency_proof(old_size: int, new_size: int, nodes: PerfectNodes) -> list[bytes]:
    """§2.1.4.1 PROOF(m, D[n]) = SUBPROOF(m, D[n], true)."""
    if not 0 < old_size <= new_size:
        raise ProofError(f"no consistency proof from {old_size} to {new_size} leaves")
    proof: list[bytes] = []
    start, end, m, whole = 0, new_size, old_size, True
    while m != end - start:
        n = end - start
        k = split_point(n)
        if m <= k:
            proof.append(subtree_hash(start + k, end, nodes))
            end = start + k
        else:
            proof.append(subtree_hash(start, start + k, nodes))
            start, m, whole = start + k, m - k, False
    if not whole:
        proof.append(subtree_hash(start, end, nodes))
    proof.reverse()  # SUBPROOF appends on the way back up the recursion
    return proof


def verify_inclusion(
    leaf: bytes, index: int, size: int, path: Sequence[bytes], root: bytes
) -> bool:
    """§2.1.3.2, step by step."""
    if index >= size or index < 0:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and r == root


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> bool:
    """§2.1.4.2, step by step; equal sizes need equal roots and an empty proof."""
    if old_size == 0:  # the empty tree is a prefix of every tree
        return not proof and new_size >= 0
    if old_size == new_size:
        return not proof and old_root == new_root
    if old_size > new_size or not proof:
        return False
    path = list(proof)
    if old_size & (old_size - 1) == 0:
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    return fr == old_root and sr == new_root and sn == 0
