"""ClickHouse's Native format as a client of a given protocol revision reads it over HTTP.

A ClickHouse server writes ``Native`` for the ``client_protocol_version`` an
HTTP client sends: from revision 1 on, each block starts with its
``BlockInfo``, and from revision 54454 on, each column's type is followed by a
"custom serialization" byte. clickhouse-go (and so Grafana's ClickHouse data
source over HTTP) always sends ``client_protocol_version=54460`` and decodes
that way. The embedded engine writes ``Native`` only as revision 0 (no
``BlockInfo``, no byte), because the HTTP handler that would pass the revision
on is not part of chDB. ``NativeUpgrade`` rewrites the engine's blocks into the
client's revision as they stream: it walks each column's data to find where
the next column begins (types and layouts as ClickHouse's serializations write
them), copies the data unchanged, and inserts what the revision adds. Every
column the engine writes in revision 0 is in the default serialization, so the
byte is always 0, as a server writes for a full (not sparse) column.

Types whose Native layout is not walked here (``JSON``, ``Dynamic``,
``Variant``, ``AggregateFunction``, ``Object``) raise ``UnsupportedNativeType``
with the column's name, so the gateway answers with a clear error instead of a
stream the client misreads.
"""

from __future__ import annotations

import re

# The revision from which each block carries BlockInfo (any revision > 0) and each column a custom
# serialization byte (DBMS_MIN_REVISION_WITH_CUSTOM_SERIALIZATION of ClickHouse and clickhouse-go).
WITH_CUSTOM_SERIALIZATION = 54454
# BlockInfo with its defaults: field 1 is_overflows = false, field 2 bucket_num = -1, field 0 ends it.
BLOCK_INFO = b"\x01\x00\x02\xff\xff\xff\xff\x00"

_FIXED_SIZES = {
    "UInt8": 1, "Int8": 1, "Bool": 1, "Enum8": 1, "Nothing": 1,
    "UInt16": 2, "Int16": 2, "Enum16": 2, "Date": 2, "BFloat16": 2,
    "UInt32": 4, "Int32": 4, "Float32": 4, "Date32": 4, "DateTime": 4, "IPv4": 4, "Decimal32": 4, "Time": 4,
    "UInt64": 8, "Int64": 8, "Float64": 8, "DateTime64": 8, "Decimal64": 8, "Time64": 8,
    "UInt128": 16, "Int128": 16, "UUID": 16, "IPv6": 16, "Decimal128": 16,
    "UInt256": 32, "Int256": 32, "Decimal256": 32,
}
_GEO = {"Point": "Tuple(Float64, Float64)", "Ring": "Array(Point)", "LineString": "Array(Point)",
        "MultiLineString": "Array(Ring)", "Polygon": "Array(Ring)", "MultiPolygon": "Array(Polygon)"}
_NAMED_ELEMENT = re.compile(r"^(`[^`]+`|[A-Za-z_][A-Za-z0-9_.]*)\s+(\S.*)$", re.S)

# LowCardinality index flags (SerializationLowCardinality.cpp).
_NEED_GLOBAL_DICTIONARY = 1 << 8
_HAS_ADDITIONAL_KEYS = 1 << 9


class UnsupportedNativeType(Exception):
    """A column whose Native layout this module does not walk; the message names the column and type."""


class _Incomplete(Exception):
    """The buffer ends inside a block: wait for more bytes."""


class NativeUpgrade:
    """Rewrites a stream of revision-0 Native blocks into ``revision``'s layout, block by block.

    ``feed`` takes the engine's bytes in any chunking and returns the rewritten
    bytes of every block completed so far; ``finish`` checks that nothing is
    left half-read. Revision 0 passes the bytes through untouched.
    """

    def __init__(self, revision: int) -> None:
        if revision < 0:
            raise ValueError(f"client_protocol_version must be >= 0, not {revision}")
        self.revision = revision
        self._pending = b""

    def feed(self, data: bytes) -> bytes:
        if self.revision == 0:
            return data
        self._pending += data
        out = bytearray()
        while self._pending:
            try:
                block, used = _upgrade_block(self._pending, self.revision)
            except _Incomplete:
                break
            out += block
            self._pending = self._pending[used:]
        return bytes(out)

    def finish(self) -> bytes:
        if self._pending:
            raise ValueError(f"the Native stream ended inside a block ({len(self._pending)} bytes left)")
        return b""


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def take(self, size: int) -> bytes:
        end = self.pos + size
        if end > len(self.data):
            raise _Incomplete
        chunk = self.data[self.pos:end]
        self.pos = end
        return chunk

    def varint(self) -> int:
        value, shift = 0, 0
        while True:
            byte = self.take(1)[0]
            value |= (byte & 0x7F) << shift
            if byte < 0x80:
                return value
            shift += 7

    def uint64(self) -> int:
        return int.from_bytes(self.take(8), "little")

    def string(self) -> bytes:
        return self.take(self.varint())


def _upgrade_block(data: bytes, revision: int) -> tuple[bytes, int]:
    reader = _Reader(data)
    columns, rows = reader.varint(), reader.varint()
    out = bytearray(BLOCK_INFO)
    out += data[:reader.pos]
    for _ in range(columns):
        start = reader.pos
        name = reader.string()
        type_name = reader.string().decode()
        out += data[start:reader.pos]
        if revision >= WITH_CUSTOM_SERIALIZATION:
            out += b"\x00"
        start = reader.pos
        if rows:
            try:
                _skip_prefix(reader, type_name)
                _skip_data(reader, type_name, rows)
            except UnsupportedNativeType as err:
                raise UnsupportedNativeType(f"column `{name.decode(errors='replace')}` of type {type_name}: {err}") \
                    from None
        out += data[start:reader.pos]
    return bytes(out), reader.pos


def parse_type(type_name: str) -> tuple[str, list[str]]:
    """``Map(String, Array(UInt8))`` -> ``("Map", ["String", "Array(UInt8)"])``; top-level commas only."""
    text = type_name.strip()
    open_at = text.find("(")
    if open_at < 0 or not text.endswith(")"):
        return text, []
    args, depth, current, quote = [], 0, [], ""
    body = text[open_at + 1:-1]
    i = 0
    while i < len(body):
        ch = body[i]
        if quote:
            current.append(ch)
            if ch == "\\" and i + 1 < len(body):
                current.append(body[i + 1])
                i += 1
            elif ch == quote:
                quote = ""
        elif ch in "'`\"":
            quote = ch
            current.append(ch)
        elif ch == "," and depth == 0:
            args.append("".join(current).strip())
            current = []
        else:
            depth += (ch == "(") - (ch == ")")
            current.append(ch)
        i += 1
    args.append("".join(current).strip())
    return text[:open_at].strip(), [a for a in args if a]


def _element_type(element: str) -> str:
    """A Tuple element's type: ``a String`` (named) or ``String``."""
    named = _NAMED_ELEMENT.match(element)
    return named.group(2) if named else element


def _resolve(type_name: str) -> tuple[str, list[str]]:
    name, args = parse_type(type_name)
    if name in _GEO:
        return parse_type(_GEO[name])
    if name == "SimpleAggregateFunction":
        return _resolve(args[-1])
    if name == "Nested":
        return "Array", [f"Tuple({', '.join(args)})"]
    return name, args


def _skip_prefix(reader: _Reader, type_name: str) -> None:
    """The serialization state prefix written once before a column's data (LowCardinality's key version)."""
    name, args = _resolve(type_name)
    if name == "LowCardinality":
        reader.uint64()
    elif name in ("Array", "Nullable"):
        _skip_prefix(reader, args[0])
    elif name in ("Tuple", "Map"):
        for element in args:
            _skip_prefix(reader, _element_type(element))


def _skip_data(reader: _Reader, type_name: str, rows: int) -> None:
    name, args = _resolve(type_name)
    if name in _FIXED_SIZES:
        reader.take(_FIXED_SIZES[name] * rows)
    elif name == "Decimal":
        precision = int(args[0])
        reader.take((4 if precision <= 9 else 8 if precision <= 18 else 16 if precision <= 38 else 32) * rows)
    elif name.startswith("Interval"):
        reader.take(8 * rows)
    elif name == "String":
        for _ in range(rows):
            reader.string()
    elif name == "FixedString":
        reader.take(int(args[0]) * rows)
    elif name == "Nullable":
        reader.take(rows)
        _skip_data(reader, args[0], rows)
    elif name in ("Array", "Map"):
        nested = int.from_bytes(reader.take(8 * rows)[-8:], "little") if rows else 0
        for element in (args if name == "Map" else args[:1]):
            _skip_data(reader, element, nested)
    elif name == "Tuple":
        for element in args:
            _skip_data(reader, _element_type(element), rows)
    elif name == "LowCardinality":
        _skip_low_cardinality(reader, args[0], rows)
    else:
        raise UnsupportedNativeType(f"the SQL gateway cannot send {name} in Native to this client; "
                                    f"select it as text (toString(...) or CAST(... AS String))")


def _skip_low_cardinality(reader: _Reader, inner: str, rows: int) -> None:
    dictionary = parse_type(inner)[1][0] if parse_type(inner)[0] == "Nullable" else inner
    while rows > 0:
        flags = reader.uint64()
        if flags & _NEED_GLOBAL_DICTIONARY:
            raise UnsupportedNativeType("a LowCardinality column with a global dictionary")
        key_size = 1 << (flags & 0xFF)
        if flags & _HAS_ADDITIONAL_KEYS:
            _skip_data(reader, dictionary, reader.uint64())
        indexes = reader.uint64()
        if indexes == 0 or indexes > rows:
            raise ValueError(f"a LowCardinality granule of {indexes} rows where {rows} were left")
        reader.take(key_size * indexes)
        rows -= indexes
