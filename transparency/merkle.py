"""RFC 9162 §2.1 Merkle trees: hashing, tree heads, inclusion and consistency proofs, and their verification.

Hashing is exactly RFC 9162's (and RFC 6962's): ``leaf = SHA-256(0x00 || bytes)``,
``node = SHA-256(0x01 || left || right)``, and the hash of a tree of ``n``
leaves splits at the largest power of two smaller than ``n``. Any RFC 9162
verifier accepts our proofs, and our verifiers accept theirs.

Storage follows Go's ``golang.org/x/mod/sumdb/tlog``: the log keeps the
hashes of *complete* subtrees, addressed by ``(level, index)`` — the subtree
at level ``L``, index ``i`` covers leaves ``[i·2^L, (i+1)·2^L)``. Every hash
a proof needs is the hash of a range ``[a, b)`` with ``a`` aligned, and such
a range is a handful of complete subtrees (one per set bit of ``b - a``), so a
proof costs O(log n) stored hashes, never a walk over the leaves.

To store less than tlog's two hashes per leaf, only the levels that are a
multiple of ``stride`` are stored (level 0, the leaf hashes, always); a
subtree at a level in between is recomputed from its ``2^(L mod stride)``
descendants at the stored level below — the idea of tlog's tiles, where a
tile of height ``h`` keeps only every ``h``-th level. With ``stride = 4`` that
is ~1.07 hashes per leaf and at most 8 stored hashes per proof step.

The proof *builders* here are pure: they list which stored hashes they need,
ask a ``HashReader`` for all of them at once (one query against the engine),
and assemble the answer. The *verifiers* are RFC 9162 §2.1.3.2 and §2.1.4.2
verbatim and need nothing but hashes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from typing import Protocol

from transparency.errors import InvalidProof, InvalidTreeRange, MissingHash

HASH_SIZE = 32
# Levels stored: 0, 4, 8, ... (see the module docstring). Changing it changes which rows the store
# holds, so it is a property of a log, not a tuning knob: the store's migration fixes it at 4.
DEFAULT_STRIDE = 4

Position = tuple[int, int]  # (level, index) of a complete subtree
Range = tuple[int, int]  # leaves [start, end)


def leaf_hash(data: bytes) -> bytes:
    """RFC 9162 leaf hash: SHA-256(0x00 || data)."""
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """RFC 9162 interior node hash: SHA-256(0x01 || left || right)."""
    return hashlib.sha256(b"\x01" + left + right).digest()


EMPTY_ROOT = hashlib.sha256(b"").digest()


class HashReader(Protocol):
    """Reads stored complete-subtree hashes.

    Only positions at stored levels (0 and multiples of the stride) are asked
    for. Implementations read them all in one go (one engine query) and return
    them in the order asked; a position that is not stored raises ``MissingHash``.
    """

    def read_hashes(self, positions: Sequence[Position]) -> Sequence[bytes]: ...


def _largest_power_of_two_below(n: int) -> int:
    """The largest power of two strictly smaller than ``n`` (n >= 2): RFC 9162's split point ``k``."""
    return 1 << ((n - 1).bit_length() - 1)


def range_subtrees(start: int, end: int) -> list[Position]:
    """The complete subtrees whose hashes make up MTH(D[start:end]), left to right.

    Valid for the ranges RFC 9162's recursion produces (``start`` a multiple of
    the largest power of two not above ``end - start``): the RFC splits off the
    largest complete left subtree and recurses on the rest, so the range's
    hash is ``node(s1, node(s2, ... node(s_{m-1}, s_m)))``.
    """
    out: list[Position] = []
    while start < end:
        level = (end - start).bit_length() - 1  # the largest complete subtree that fits
        if start % (1 << level):
            raise InvalidTreeRange(f"leaf range [{start}, {end}) is not aligned as RFC 9162 proofs require")
        out.append((level, start >> level))
        start += 1 << level
    return out


def fold_subtrees(hashes: Sequence[bytes]) -> bytes:
    """The hash of a range from its complete subtrees' hashes, left to right (see ``range_subtrees``)."""
    if not hashes:
        return EMPTY_ROOT
    acc = hashes[-1]
    for h in reversed(hashes[:-1]):
        acc = node_hash(h, acc)
    return acc


def stored_positions(position: Position, stride: int) -> list[Position]:
    """The stored positions a complete subtree's hash is computed from (itself when its level is stored)."""
    level, index = position
    below = level - level % stride
    span = level - below
    first = index << span
    return [(below, first + j) for j in range(1 << span)]


def combine_subtree(hashes: Sequence[bytes]) -> bytes:
    """The hash of a complete subtree from its 2^k consecutive descendants at one level (left to right)."""
    layer = list(hashes)
    while len(layer) > 1:
        layer = [node_hash(layer[i], layer[i + 1]) for i in range(0, len(layer), 2)]
    return layer[0]


def read_subtrees(reader: HashReader, positions: Sequence[Position], stride: int = DEFAULT_STRIDE) -> list[bytes]:
    """The hashes of any complete subtrees, with one read of the stored ones they derive from."""
    expanded = [stored_positions(p, stride) for p in positions]
    wanted = sorted({q for group in expanded for q in group})
    got = reader.read_hashes(wanted)
    if len(got) != len(wanted):
        raise MissingHash(f"asked the store for {len(wanted)} hashes, got {len(got)}")
    table = dict(zip(wanted, got, strict=True))
    return [combine_subtree([table[q] for q in group]) for group in expanded]


def read_ranges(reader: HashReader, ranges: Sequence[Range], stride: int = DEFAULT_STRIDE) -> list[bytes]:
    """MTH of each leaf range, all read in one batch."""
    parts = [range_subtrees(a, b) for a, b in ranges]
    flat = read_subtrees(reader, [p for group in parts for p in group], stride)
    out: list[bytes] = []
    i = 0
    for group in parts:
        out.append(fold_subtrees(flat[i:i + len(group)]))
        i += len(group)
    return out


def tree_hash(reader: HashReader, size: int, stride: int = DEFAULT_STRIDE) -> bytes:
    """MTH of the first ``size`` leaves (the empty tree: SHA-256 of nothing, RFC 9162 §2.1.1)."""
    if size < 0:
        raise InvalidTreeRange(f"tree size {size} is negative")
    if size == 0:
        return EMPTY_ROOT
    return read_ranges(reader, [(0, size)], stride)[0]


def inclusion_ranges(index: int, size: int) -> list[Range]:
    """The ranges whose MTHs form PATH(index, D[size]) of RFC 9162 §2.1.3.1, in proof order."""
    if not 0 <= index < size:
        raise InvalidTreeRange(f"leaf index {index} is not in a tree of {size} leaves")
    out: list[Range] = []
    lo, hi, m = 0, size, index
    while hi - lo > 1:
        k = _largest_power_of_two_below(hi - lo)
        if m < k:
            out.append((lo + k, hi))
            hi = lo + k
        else:
            out.append((lo, lo + k))
            lo, m = lo + k, m - k
    out.reverse()  # the recursion appends on the way back up: the deepest sibling comes first
    return out


def consistency_ranges(old_size: int, new_size: int) -> list[Range]:
    """The ranges whose MTHs form PROOF(old_size, D[new_size]) of RFC 9162 §2.1.4.1, in proof order.

    Empty when ``old_size`` is 0 or equals ``new_size`` (nothing to prove).
    """
    if not 0 <= old_size <= new_size:
        raise InvalidTreeRange(f"no consistency proof from size {old_size} to size {new_size}")
    if old_size in (0, new_size):
        return []
    out: list[Range] = []
    lo, hi, m, complete = 0, new_size, old_size, True
    while True:
        n = hi - lo
        if m == n:
            if not complete:
                out.append((lo, hi))
            break
        k = _largest_power_of_two_below(n)
        if m <= k:
            out.append((lo + k, hi))
            hi = lo + k
        else:
            out.append((lo, lo + k))
            lo, m, complete = lo + k, m - k, False
    out.reverse()
    return out


def inclusion_proof(reader: HashReader, index: int, size: int, stride: int = DEFAULT_STRIDE) -> list[bytes]:
    """The audit path of leaf ``index`` in the tree of ``size`` leaves, from one read of stored hashes."""
    return read_ranges(reader, inclusion_ranges(index, size), stride)


def inclusion_proof_and_leaf(reader: HashReader, index: int, size: int,
                             stride: int = DEFAULT_STRIDE) -> tuple[bytes, list[bytes]]:
    """The stored leaf hash at ``index`` and its audit path, from one read."""
    hashes = read_ranges(reader, [(index, index + 1), *inclusion_ranges(index, size)], stride)
    return hashes[0], hashes[1:]


def consistency_proof(reader: HashReader, old_size: int, new_size: int,
                      stride: int = DEFAULT_STRIDE) -> list[bytes]:
    """The consistency proof from ``old_size`` to ``new_size``, from one read of stored hashes."""
    return read_ranges(reader, consistency_ranges(old_size, new_size), stride)


def verify_inclusion(leaf: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes) -> None:
    """RFC 9162 §2.1.3.2: check that ``leaf`` (a leaf *hash*) is at ``index`` in the tree with ``root``.

    Raises:
        InvalidProof: the path does not lead to ``root``, or has the wrong length.
    """
    if not 0 <= index < size:
        raise InvalidProof(f"leaf index {index} is not in a tree of {size} leaves")
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            raise InvalidProof("inclusion proof is longer than the tree is deep")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise InvalidProof("inclusion proof is shorter than the tree is deep")
    if r != root:
        raise InvalidProof("inclusion proof does not lead to the root hash")


def verify_consistency(old_size: int, new_size: int, old_root: bytes, new_root: bytes,
                       proof: Sequence[bytes]) -> None:
    """RFC 9162 §2.1.4.2: check that the tree of ``new_size`` leaves extends the one of ``old_size``.

    Sizes 0 and equal sizes need an empty proof (and, for equal sizes, equal roots).

    Raises:
        InvalidProof: the proof does not show ``old_root`` to be a prefix of ``new_root``.
    """
    if not 0 <= old_size <= new_size:
        raise InvalidProof(f"a tree of {new_size} leaves cannot extend one of {old_size}")
    if old_size == 0 or old_size == new_size:
        if proof:
            raise InvalidProof("a consistency proof from the empty tree or to the same size must be empty")
        if old_size == new_size and old_root != new_root:
            raise InvalidProof(f"two different root hashes for the same tree size {new_size}")
        return
    if not proof:
        raise InvalidProof("consistency proof is empty")
    path = list(proof)
    if old_size & (old_size - 1) == 0:
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise InvalidProof("consistency proof is longer than the tree is deep")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise InvalidProof("consistency proof is shorter than the trees are deep")
    if fr != old_root:
        raise InvalidProof(f"consistency proof does not lead to the root hash of size {old_size}")
    if sr != new_root:
        raise InvalidProof(f"consistency proof does not lead to the root hash of size {new_size}")


class Frontier:
    """The right edge of a growing tree: one complete-subtree hash per set bit of the size.

    Appending a leaf merges equal-level subtrees like a binary counter, so each
    append costs amortised O(1) hashes and reports every complete subtree it
    finishes (what a store must write). The root is the fold of the frontier.
    """

    __slots__ = ("_stack", "size")

    def __init__(self, size: int = 0, hashes: Sequence[bytes] = ()) -> None:
        levels = [b for b in range(size.bit_length() - 1, -1, -1) if size >> b & 1]
        if len(levels) != len(hashes):
            raise InvalidTreeRange(f"a frontier of size {size} has {len(levels)} subtrees, got {len(hashes)}")
        self.size = size
        self._stack: list[tuple[int, bytes]] = list(zip(levels, hashes, strict=True))

    @staticmethod
    def positions(size: int) -> list[Position]:
        """The complete subtrees a frontier of ``size`` leaves holds, left to right."""
        return range_subtrees(0, size)

    def append(self, leaf: bytes) -> list[tuple[int, int, bytes]]:
        """Append one leaf *hash*; returns the (level, index, hash) of each complete subtree it finished."""
        self.size += 1
        stack = self._stack
        stack.append((0, leaf))
        done = [(0, self.size - 1, leaf)]
        while len(stack) >= 2 and stack[-1][0] == stack[-2][0]:
            level, right = stack.pop()
            _, left = stack.pop()
            merged = node_hash(left, right)
            stack.append((level + 1, merged))
            done.append((level + 1, (self.size >> (level + 1)) - 1, merged))
        return done

    def root(self) -> bytes:
        """MTH of the leaves appended so far."""
        return fold_subtrees([h for _, h in self._stack])

    def hashes(self) -> list[bytes]:
        return [h for _, h in self._stack]


class MemoryHashes:
    """A ``HashReader`` over a dict of stored hashes: for tests, the verifier and small trees."""

    def __init__(self, hashes: Mapping[Position, bytes] | None = None) -> None:
        self.hashes: dict[Position, bytes] = dict(hashes or {})

    def read_hashes(self, positions: Sequence[Position]) -> list[bytes]:
        try:
            return [self.hashes[p] for p in positions]
        except KeyError as err:
            raise MissingHash(f"no stored hash for subtree (level, index) = {err.args[0]}") from err

    @classmethod
    def from_leaves(cls, leaves: Iterable[bytes], stride: int = DEFAULT_STRIDE) -> MemoryHashes:
        """Every stored-level hash of a tree built from leaf *hashes*."""
        frontier = Frontier()
        store = cls()
        for h in leaves:
            for level, index, value in frontier.append(h):
                if level % stride == 0:
                    store.hashes[(level, index)] = value
        return store
