"""Revision-0 Native blocks rewritten for a client's protocol revision (clickhouse/native_blocks.py).

The blocks here are written by hand in ClickHouse's layout (varint counts, length-prefixed strings,
little-endian fixed widths), so a wrong column walk shows up as a misplaced byte or a block that
never completes. The engine's own output is checked in tests/integration/test_sql_gateway_grafana.py.
"""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from clickhouse.native_blocks import (
    BLOCK_INFO,
    WITH_CUSTOM_SERIALIZATION,
    NativeUpgrade,
    UnsupportedNativeType,
    parse_type,
)

CLICKHOUSE_GO = 54460  # the client_protocol_version clickhouse-go v2 sends


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _str(text: str | bytes) -> bytes:
    raw = text.encode() if isinstance(text, str) else text
    return _varint(len(raw)) + raw


def _block(rows: int, columns: list[tuple[str, str, bytes]]) -> tuple[bytes, bytes]:
    """A revision-0 block and the same block as clickhouse-go reads it."""
    old = _varint(len(columns)) + _varint(rows)
    new = BLOCK_INFO + old
    for name, type_name, data in columns:
        head = _str(name) + _str(type_name)
        old += head + data
        new += head + b"\x00" + data
    return old, new


def _strings(values: list[str]) -> bytes:
    return b"".join(_str(v) for v in values)


KEY_VERSION = struct.pack("<Q", 1)  # LowCardinality's state prefix, written once before the column's data


def _granule(keys: list[str], indexes: list[int]) -> bytes:
    """One LowCardinality granule: flags (UInt8 keys, additional keys), the keys, the indexes."""
    return (struct.pack("<Q", (1 << 9) | 0) + struct.pack("<Q", len(keys)) + _strings(keys)
            + struct.pack("<Q", len(indexes)) + bytes(indexes))


MIXED = _block(3, [
    ("n", "UInt64", struct.pack("<3Q", 1, 2, 2**64 - 1)),
    ("s", "String", _strings(["", "é", "x" * 200])),
    ("at", "DateTime64(6, 'UTC')", struct.pack("<3q", 0, 1, -1)),
    ("tags", "Array(LowCardinality(String))",
     KEY_VERSION + struct.pack("<3Q", 2, 2, 3) + _granule(["a", "b"], [0, 1, 0])),
    ("maybe", "Nullable(String)", b"\x00\x01\x00" + _strings(["a", "", "c"])),
    ("m", "Map(String, UInt8)", struct.pack("<3Q", 1, 1, 2) + _strings(["k", "l"]) + b"\x07\x08"),
    ("t", "Tuple(a UInt8, b FixedString(2))", b"\x01\x02\x03" + b"aabbcc"),
    ("e", "Enum8('x' = 1, 'y,z' = 2)", b"\x01\x02\x01"),
    ("lc", "LowCardinality(Nullable(String))", KEY_VERSION + _granule(["", "v"], [1, 0]) + _granule([], [1])),
    ("p", "Point", struct.pack("<6d", 1, 2, 3, 4, 5, 6)),
    ("d", "Decimal(20, 4)", bytes(48)),
])


def test_each_column_gets_the_serialization_byte_and_each_block_its_info():
    old, new = MIXED
    upgrade = NativeUpgrade(CLICKHOUSE_GO)
    assert upgrade.feed(old + old) == new + new
    assert upgrade.finish() == b""


@given(st.lists(st.integers(min_value=0, max_value=2 * len(MIXED[0])), max_size=8))
def test_any_chunking_of_the_stream_gives_the_same_bytes(cuts):
    old, new = MIXED
    stream = old + old
    upgrade = NativeUpgrade(CLICKHOUSE_GO)
    pieces, last = [], 0
    for cut in [*sorted(cuts), len(stream)]:
        pieces.append(upgrade.feed(stream[last:cut]))
        last = cut
    assert b"".join(pieces) == new + new
    upgrade.finish()


def test_revision_zero_passes_through_and_old_revisions_get_the_info_only():
    old, _ = MIXED
    assert NativeUpgrade(0).feed(old) == old
    older = NativeUpgrade(WITH_CUSTOM_SERIALIZATION - 1).feed(old)
    assert older == BLOCK_INFO + old


def test_an_empty_block_has_no_column_data():
    old, new = _block(0, [("x", "LowCardinality(String)", b""), ("y", "Array(String)", b"")])
    assert NativeUpgrade(CLICKHOUSE_GO).feed(old) == new


def test_a_stream_cut_inside_a_block_is_an_error_at_the_end():
    old, new = MIXED
    upgrade = NativeUpgrade(CLICKHOUSE_GO)
    assert upgrade.feed(old + old[:-5]) == new
    with pytest.raises(ValueError, match="ended inside a block"):
        upgrade.finish()


@pytest.mark.parametrize("type_name", ["JSON", "Dynamic", "Variant(String, UInt8)",
                                       "AggregateFunction(uniq, UInt64)", "Array(JSON)"])
def test_types_it_cannot_walk_are_refused_naming_the_column(type_name):
    old, _ = _block(1, [("payload_json", type_name, b"\x00" * 16)])
    with pytest.raises(UnsupportedNativeType, match="column `payload_json`") as raised:
        NativeUpgrade(CLICKHOUSE_GO).feed(old)
    assert "toString" in str(raised.value)


def test_a_negative_revision_is_refused():
    with pytest.raises(ValueError, match="client_protocol_version"):
        NativeUpgrade(-1)


_LEAVES = st.sampled_from(["UInt8", "String", "DateTime64(6, 'UTC')", "Enum8('a,b' = 1, 'c)' = 2)",
                           "Decimal(10, 2)", "FixedString(4)"])
_TYPES = st.recursive(_LEAVES, lambda inner: st.one_of(
    inner.map(lambda t: f"Array({t})"),
    inner.map(lambda t: f"Nullable({t})"),
    st.tuples(inner, inner).map(lambda kv: f"Map({kv[0]}, {kv[1]})"),
    st.lists(inner, min_size=1, max_size=3).map(lambda ts: f"Tuple({', '.join(ts)})"),
), max_leaves=6)


@given(st.sampled_from(["Array", "Nullable", "Map", "Tuple", "LowCardinality"]),
       st.lists(_TYPES, min_size=1, max_size=3))
def test_type_arguments_split_at_top_level_commas_only(outer, arguments):
    assert parse_type(f"{outer}({', '.join(arguments)})") == (outer, arguments)
