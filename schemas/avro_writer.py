"""Avro binary encoding compiled once from a schema: the producer's hot path.

fastavro's ``schemaless_writer`` walks the schema for every record and picks
each union branch by trying the branches in turn; on the event schema that
was most of a producer's cost per event. Compiling the schema once into
nested functions, each of which knows its type, writes the same bytes in
about a third of the time (docs/performance.md, "Producer"). fastavro stays
the decoder and the reference: a test compares both encoders' bytes.

Only the types the event schemas use are compiled (null, boolean, int, long,
double, string, record, map, array, union); any other raises
``UnsupportedSchema`` when the codec is built, never while producing. Values
the schema refuses raise ``ValueError`` or ``TypeError`` with the field path.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Mapping
from typing import Any

Writer = Callable[[Any, list[bytes]], None]

_LONG_MIN, _LONG_MAX = -(1 << 63), (1 << 63) - 1
_INT_MIN, _INT_MAX = -(1 << 31), (1 << 31) - 1
_DOUBLE = struct.Struct("<d")


class UnsupportedSchema(ValueError):
    """The schema uses an Avro type this writer does not compile."""


def encode_long(n: int) -> bytes:
    """An Avro long: zigzag, then little-endian base-128 varint."""
    n = (n << 1) ^ (n >> 63)
    out = bytearray()
    while n & ~0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


# Lengths, counts and union indexes are small: look them up instead of encoding them.
_SMALL = tuple(encode_long(i) for i in range(1024))


def _long_bytes(n: int) -> bytes:
    return _SMALL[n] if 0 <= n < 1024 else encode_long(n)


def compile_writer(schema: Any) -> Callable[[Any], bytes]:
    """An encoder for ``schema`` (parsed JSON, logical types already removed) returning the record's bytes."""
    write = _compile(schema, {}, "record")

    def encode(datum: Any) -> bytes:
        out: list[bytes] = []
        write(datum, out)
        return b"".join(out)

    return encode


def _compile(schema: Any, named: dict[str, Writer], path: str) -> Writer:
    if isinstance(schema, list):
        return _union(schema, named, path)
    if isinstance(schema, str):
        if schema in named:
            return named[schema]
        return _primitive(schema, path)
    if not isinstance(schema, Mapping):
        raise UnsupportedSchema(f"{path}: not an Avro schema: {schema!r}")
    kind = schema.get("type")
    if kind == "record":
        return _record(schema, named, path)
    if kind == "map":
        return _map(_compile(schema["values"], named, f"{path}.<value>"), path)
    if kind == "array":
        return _array(_compile(schema["items"], named, f"{path}[]"), path)
    if isinstance(kind, str | list):
        return _compile(kind, named, path)
    raise UnsupportedSchema(f"{path}: Avro type {kind!r} is not supported by the compiled writer")


def _primitive(kind: str, path: str) -> Writer:
    if kind == "null":
        def write_null(datum: Any, out: list[bytes]) -> None:
            if datum is not None:
                raise ValueError(f"{path}: expected null, got {type(datum).__name__}")
        return write_null
    if kind == "boolean":
        def write_boolean(datum: Any, out: list[bytes]) -> None:
            if not isinstance(datum, bool):
                raise TypeError(f"{path}: expected a boolean, got {type(datum).__name__}")
            out.append(b"\x01" if datum else b"\x00")
        return write_boolean
    if kind in ("int", "long"):
        low, high = (_INT_MIN, _INT_MAX) if kind == "int" else (_LONG_MIN, _LONG_MAX)

        def write_integer(datum: Any, out: list[bytes]) -> None:
            if not isinstance(datum, int) or isinstance(datum, bool):
                raise TypeError(f"{path}: expected an integer, got {type(datum).__name__}")
            if not low <= datum <= high:
                raise ValueError(f"{path}: {datum} does not fit an Avro {kind}")
            out.append(_long_bytes(datum))
        return write_integer
    if kind == "double":
        def write_double(datum: Any, out: list[bytes]) -> None:
            if not isinstance(datum, int | float) or isinstance(datum, bool):
                raise TypeError(f"{path}: expected a number, got {type(datum).__name__}")
            out.append(_DOUBLE.pack(datum))
        return write_double
    if kind == "string":
        def write_string(datum: Any, out: list[bytes]) -> None:
            if not isinstance(datum, str):
                raise TypeError(f"{path}: expected a string, got {type(datum).__name__}")
            raw = datum.encode()
            out.append(_long_bytes(len(raw)))
            out.append(raw)
        return write_string
    raise UnsupportedSchema(f"{path}: Avro type {kind!r} is not supported by the compiled writer")


def _record(schema: Mapping[str, Any], named: dict[str, Writer], path: str) -> Writer:
    fields: list[tuple[str, Writer, bool, Any]] = []

    def write_record(datum: Any, out: list[bytes]) -> None:
        if not isinstance(datum, Mapping):
            raise TypeError(f"{path}: expected a record (mapping), got {type(datum).__name__}")
        for name, write, has_default, default in fields:
            if name in datum:
                write(datum[name], out)
            elif has_default:
                write(default, out)
            else:
                raise ValueError(f"{path}.{name} is missing and has no default")

    # Registered before its fields compile, so a recursive reference finds it.
    named[schema["name"]] = write_record
    if "namespace" in schema:
        named[f"{schema['namespace']}.{schema['name']}"] = write_record
    for field in schema["fields"]:
        fields.append((field["name"], _compile(field["type"], named, f"{path}.{field['name']}"),
                       "default" in field, field.get("default")))
    return write_record


def _map(write_value: Writer, path: str) -> Writer:
    def write_map(datum: Any, out: list[bytes]) -> None:
        if not isinstance(datum, Mapping):
            raise TypeError(f"{path}: expected a map, got {type(datum).__name__}")
        if datum:
            out.append(_long_bytes(len(datum)))
            for key, value in datum.items():
                if not isinstance(key, str):
                    raise TypeError(f"{path}: map keys must be strings, got {type(key).__name__}")
                raw = key.encode()
                out.append(_long_bytes(len(raw)))
                out.append(raw)
                write_value(value, out)
        out.append(b"\x00")
    return write_map


def _array(write_item: Writer, path: str) -> Writer:
    def write_array(datum: Any, out: list[bytes]) -> None:
        if not isinstance(datum, list | tuple):
            raise TypeError(f"{path}: expected an array, got {type(datum).__name__}")
        if datum:
            out.append(_long_bytes(len(datum)))
            for item in datum:
                write_item(item, out)
        out.append(b"\x00")
    return write_array


# The Python types each Avro branch takes, in the order a value's type is matched (bool before int).
_BRANCH_TYPES: tuple[tuple[str, tuple[type, ...]], ...] = (
    ("null", (type(None),)),
    ("boolean", (bool,)),
    ("long", (int,)),
    ("int", (int,)),
    ("double", (float, int)),
    ("string", (str,)),
    ("array", (list, tuple)),
    ("map", (dict, Mapping)),
    ("record", (dict, Mapping)),
)


def _branch_kind(schema: Any) -> str:
    if isinstance(schema, Mapping):
        return str(schema.get("type"))
    return "record" if schema not in {k for k, _ in _BRANCH_TYPES} else str(schema)


def _union(branches: list[Any], named: dict[str, Writer], path: str) -> Writer:
    compiled = [(_long_bytes(i), _branch_kind(b), _compile(b, named, path)) for i, b in enumerate(branches)]
    by_type: dict[type, tuple[bytes, Writer]] = {}
    fallbacks: list[tuple[tuple[type, ...], bytes, Writer]] = []
    for kind, types in _BRANCH_TYPES:
        for index, branch_kind, write in compiled:
            if branch_kind == kind:
                for t in types:
                    by_type.setdefault(t, (index, write))
                fallbacks.append((types, index, write))
                break

    def write_union(datum: Any, out: list[bytes]) -> None:
        chosen = by_type.get(type(datum))
        if chosen is None:  # a subclass (an OrderedDict, a str enum): match by isinstance
            for types, index, write in fallbacks:
                if isinstance(datum, types) and not (isinstance(datum, bool) and bool not in types):
                    chosen = (index, write)
                    break
            else:
                raise ValueError(f"{path}: a {type(datum).__name__} fits none of the union's types")
        out.append(chosen[0])
        chosen[1](datum, out)
    return write_union
