"""RFC 9162 Merkle proofs: every proof from the stored-hash builders verifies, against a reference
implementation written straight from the RFC's recursive definitions; tampered proofs fail."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from transparency.errors import InvalidProof, InvalidTreeRange, MissingHash
from transparency.merkle import (
    EMPTY_ROOT,
    Frontier,
    MemoryHashes,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    node_hash,
    tree_hash,
    verify_consistency,
    verify_inclusion,
)


# --- the reference: RFC 9162 §2.1.1, §2.1.3.1, §2.1.4.1, recursively, over the leaf *data* ---
def ref_mth(d: list[bytes]) -> bytes:
    n = len(d)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return hashlib.sha256(b"\x00" + d[0]).digest()
    k = 1
    while k * 2 < n:
        k *= 2
    return hashlib.sha256(b"\x01" + ref_mth(d[:k]) + ref_mth(d[k:])).digest()


def ref_path(m: int, d: list[bytes]) -> list[bytes]:
    n = len(d)
    if n == 1:
        return []
    k = 1
    while k * 2 < n:
        k *= 2
    if m < k:
        return [*ref_path(m, d[:k]), ref_mth(d[k:])]
    return [*ref_path(m - k, d[k:]), ref_mth(d[:k])]


def ref_subproof(m: int, d: list[bytes], b: bool) -> list[bytes]:
    n = len(d)
    if m == n:
        return [] if b else [ref_mth(d)]
    k = 1
    while k * 2 < n:
        k *= 2
    if m <= k:
        return [*ref_subproof(m, d[:k], b), ref_mth(d[k:])]
    return [*ref_subproof(m - k, d[k:], False), ref_mth(d[:k])]


def ref_proof(m: int, d: list[bytes]) -> list[bytes]:
    return ref_subproof(m, d, True)


def data(n: int) -> list[bytes]:
    return [f"event-{i}".encode() for i in range(n)]


def store(d: list[bytes], stride: int) -> MemoryHashes:
    return MemoryHashes.from_leaves((leaf_hash(x) for x in d), stride=stride)


STRIDES = st.sampled_from([1, 2, 3, 4])


@settings(max_examples=150, deadline=None)
@given(n=st.integers(1, 300), stride=STRIDES, data_=st.data())
def test_inclusion_proofs_match_the_reference_and_verify(n: int, stride: int, data_: st.DataObject) -> None:
    d = data(n)
    m = data_.draw(st.integers(0, n - 1))
    s = store(d, stride)
    root = tree_hash(s, n, stride)
    assert root == ref_mth(d)
    proof = inclusion_proof(s, m, n, stride)
    assert proof == ref_path(m, d)
    verify_inclusion(leaf_hash(d[m]), m, n, proof, root)


@settings(max_examples=150, deadline=None)
@given(n=st.integers(1, 300), stride=STRIDES, data_=st.data())
def test_consistency_proofs_match_the_reference_and_verify(n: int, stride: int, data_: st.DataObject) -> None:
    d = data(n)
    m = data_.draw(st.integers(0, n))
    s = store(d, stride)
    proof = consistency_proof(s, m, n, stride)
    if 0 < m < n:
        assert proof == ref_proof(m, d)
    old_root = tree_hash(s, m, stride)
    assert old_root == ref_mth(d[:m])
    verify_consistency(m, n, old_root, ref_mth(d), proof)


@settings(max_examples=100, deadline=None)
@given(n=st.integers(2, 200), data_=st.data())
def test_tampered_inclusion_proofs_fail(n: int, data_: st.DataObject) -> None:
    d = data(n)
    m = data_.draw(st.integers(0, n - 1))
    s = store(d, 4)
    root = ref_mth(d)
    proof = inclusion_proof(s, m, n)
    which = data_.draw(st.integers(0, len(proof) - 1))
    bad = list(proof)
    bad[which] = bytes(32) if bad[which] != bytes(32) else b"\x01" * 32
    with pytest.raises(InvalidProof):
        verify_inclusion(leaf_hash(d[m]), m, n, bad, root)
    with pytest.raises(InvalidProof):
        verify_inclusion(leaf_hash(b"forged"), m, n, proof, root)
    with pytest.raises(InvalidProof):  # one step missing, one too many
        verify_inclusion(leaf_hash(d[m]), m, n, proof[:-1], root)
    with pytest.raises(InvalidProof):
        verify_inclusion(leaf_hash(d[m]), m, n, [*proof, bytes(32)], root)
    other = data_.draw(st.integers(0, n - 1).filter(lambda x: x != m))
    with pytest.raises(InvalidProof):  # the right path, claimed at another index
        verify_inclusion(leaf_hash(d[m]), other, n, proof, root)


@settings(max_examples=100, deadline=None)
@given(n=st.integers(3, 200), data_=st.data())
def test_tampered_consistency_proofs_fail(n: int, data_: st.DataObject) -> None:
    d = data(n)
    m = data_.draw(st.integers(1, n - 1))
    s = store(d, 4)
    proof = consistency_proof(s, m, n)
    old_root, new_root = ref_mth(d[:m]), ref_mth(d)
    which = data_.draw(st.integers(0, len(proof) - 1))
    bad = list(proof)
    bad[which] = hashlib.sha256(bad[which]).digest()
    with pytest.raises(InvalidProof):
        verify_consistency(m, n, old_root, new_root, bad)
    with pytest.raises(InvalidProof):
        verify_consistency(m, n, old_root, ref_mth([*d[:-1], b"edited"]), proof)
    edited = list(d)
    edited[data_.draw(st.integers(0, m - 1))] = b"edited"
    with pytest.raises(InvalidProof):  # history rewritten below the old size
        verify_consistency(m, n, old_root, ref_mth(edited), consistency_proof(store(edited, 4), m, n))
    with pytest.raises(InvalidProof):
        verify_consistency(m, n, old_root, new_root, proof[:-1])


@settings(deadline=None)
@given(n=st.integers(0, 200))
def test_frontier_root_equals_the_reference_at_every_size(n: int) -> None:
    f = Frontier()
    d = data(n)
    for i, x in enumerate(d):
        assert f.root() == ref_mth(d[:i])
        f.append(leaf_hash(x))
    assert f.root() == ref_mth(d)
    # a frontier rebuilt from its stored subtrees continues identically
    s = store(d, 1)
    g = Frontier(n, s.read_hashes(Frontier.positions(n)))
    f.append(leaf_hash(b"next"))
    g.append(leaf_hash(b"next"))
    assert f.root() == g.root() == ref_mth([*d, b"next"])


def test_rfc_vectors_and_edges() -> None:
    assert tree_hash(MemoryHashes(), 0) == EMPTY_ROOT
    assert leaf_hash(b"") == bytes.fromhex("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d")
    assert node_hash(b"a" * 32, b"b" * 32) == hashlib.sha256(b"\x01" + b"a" * 32 + b"b" * 32).digest()
    with pytest.raises(InvalidTreeRange):
        inclusion_proof(MemoryHashes(), 5, 5)
    with pytest.raises(InvalidTreeRange):
        consistency_proof(MemoryHashes(), 6, 5)
    with pytest.raises(MissingHash):
        inclusion_proof(MemoryHashes(), 0, 2)
    verify_consistency(0, 7, EMPTY_ROOT, ref_mth(data(7)), [])
    verify_consistency(7, 7, ref_mth(data(7)), ref_mth(data(7)), [])
    with pytest.raises(InvalidProof):
        verify_consistency(7, 7, ref_mth(data(7)), ref_mth(data(6)), [])


def test_stride_stores_about_one_hash_per_leaf() -> None:
    s = store(data(4096), 4)
    assert len(s.hashes) == 4096 + 256 + 16 + 1
