"""A batch's Avro messages, parsed by the engine into a per-consumer staging table.

Python only concatenates the messages of one writer schema into one Avro
object-container block, each prefixed with its position in the group (an Avro
``long`` field ``_seq`` put before the schema's fields: a record's encoding is
its fields' encodings in order, so the prefix is the whole change). The
message's single-object header (marker and fingerprint, ``HEADER_LENGTH``
bytes) stays where it is, read as a ``fixed`` field ``_header`` the staging
table does not have (the engine skips it), so no body is copied out of its
message before the one copy into the block.
The engine parses the block in C++ into a ``Memory`` table. ``_seq`` ties every
staged row to its message, so a verdict or a conflict names the right one, and a
misparse (a body with trailing bytes shifts every later record) shows as
positions that are not 0..n-1 instead of being attributed to the wrong message.

``find_unparseable`` is the Python side: it reads each body structurally
(strings as bytes, so text that is not UTF-8 still parses and the engine's
rules name it) to find the bodies that are not Avro of their writer schema.
"""

from __future__ import annotations

import io
import itertools
import json
import logging
import os
import re
import uuid
from collections.abc import Iterator, Sequence
from typing import Any

import fastavro
from clickhouse_connect.driver.client import Client

from schemas.avro_writer import encode_long
from schemas.codec import HEADER_LENGTH, SchemaVersion, without_logical_types

logger = logging.getLogger(__name__)

STAGING_PREFIX = "_staging_"

_PAYLOAD_MAP = "Map(String, Variant(Array(String), Bool, Float64, Int64, String))"

STAGING_COLUMNS = f"""
    _seq Int64,
    id String,
    workspace_id String,
    occurred_at Int64,
    action String,
    category String,
    actor Tuple(kind String, id String, display String),
    target Tuple(kind String, id String, display String),
    payload Tuple(before {_PAYLOAD_MAP}, after {_PAYLOAD_MAP}),
    context Nullable(Tuple(ip Nullable(String), user_agent Nullable(String),
                           request_id Nullable(String), service Nullable(String)))
"""

# Zigzag varints of 0..n, built once: prefixing 100,000 messages is then one C-level join.
_SEQ_PREFIXES: list[bytes] = []


def _seq_prefixes(n: int) -> list[bytes]:
    while len(_SEQ_PREFIXES) < n:
        _SEQ_PREFIXES.extend(encode_long(i) for i in range(len(_SEQ_PREFIXES), max(n, 2 * len(_SEQ_PREFIXES))))
    return _SEQ_PREFIXES


def staged_schema(writer: SchemaVersion) -> dict[str, Any]:
    """The writer's schema with ``_seq`` and the message's header first (the container block's schema)."""
    schema = dict(writer.raw)
    header = {"type": "fixed", "name": "_single_object_header", "size": HEADER_LENGTH}
    schema["fields"] = [{"name": "_seq", "type": "long"}, {"name": "_header", "type": header},
                        *writer.raw["fields"]]
    return schema


def _avro_string(data: bytes) -> bytes:
    return encode_long(len(data)) + data


def object_container(schema: dict[str, Any], parts: Sequence[bytes], count: int | None = None) -> bytes:
    """An Avro object container file holding ``parts`` (schemaless encodings) in one block.

    ``count``: how many records ``parts`` hold when a record spans several parts. The data is
    copied once, by one join (a batch's block is tens of MB).
    """
    sync = os.urandom(16)
    meta = (
        encode_long(2)
        + _avro_string(b"avro.schema") + _avro_string(json.dumps(schema).encode())
        + _avro_string(b"avro.codec") + _avro_string(b"null")
        + encode_long(0)
    )
    records = len(parts) if count is None else count
    head = b"Obj\x01" + meta + sync + encode_long(records) + encode_long(sum(map(len, parts)))
    return b"".join([head, *parts, sync])


def staged_block(writer: SchemaVersion, messages: Sequence[bytes]) -> bytes:
    """The block of ``messages`` (whole single-object messages of ``writer``), numbered from 0."""
    prefixes = _seq_prefixes(len(messages))
    numbered = [part for pair in zip(prefixes, messages, strict=False) for part in pair]
    return object_container(staged_schema(writer), numbered, len(messages))


class StagingTable:
    """One consumer's ``Memory`` table; ``stage`` replaces its contents with one group of messages."""

    def __init__(self, client: Client, database: str) -> None:
        self._client = client
        self._database = database
        # The pid names the owner: on the embedded engine (one process) any other pid is a dead one.
        self._created = False
        self.name = f"{database}.{STAGING_PREFIX}{os.getpid()}_{re.sub(r'[^a-z0-9]', '', uuid.uuid4().hex)[:12]}"

    def create(self) -> None:
        self._client.command(f"CREATE TABLE IF NOT EXISTS {self.name} ({STAGING_COLUMNS}) ENGINE = Memory")
        self._created = True

    def stage(self, writer: SchemaVersion, messages: Sequence[bytes]) -> None:
        """Parse ``messages`` (whole single-object messages, header included) into the table (raises
        whatever the engine raises for an unparseable block)."""
        try:
            if not self._created:
                self.create()
            self._client.command(f"TRUNCATE TABLE IF EXISTS {self.name}")
            self._client.raw_insert(
                self.name,
                insert_block=staged_block(writer, messages),
                fmt="Avro",
                settings={"input_format_skip_unknown_fields": 1},
            )
        except Exception:
            self._created = False  # a server restart loses Memory tables: the next attempt makes it again
            raise

    def drop(self) -> None:
        self._client.command(f"DROP TABLE IF EXISTS {self.name}")


def drop_leftover_staging(client: Client, database: str, *, older_than_seconds: float | None) -> list[str]:
    """Drop staging tables that consumers killed before they could. ``None``: those of every other
    process (the embedded engine: no other process can hold it open); else those older than that.
    Returns the names dropped."""
    if older_than_seconds is None:
        condition = " AND NOT startsWith(name, {mine:String})"
    else:
        condition = " AND metadata_modification_time < now() - toIntervalSecond({age:UInt32})"
    rows = client.query(
        "SELECT name FROM system.tables WHERE database = {db:String} AND startsWith(name, {prefix:String})"
        + condition,
        parameters={"db": database, "prefix": STAGING_PREFIX, "age": int(older_than_seconds or 0),
                    "mine": f"{STAGING_PREFIX}{os.getpid()}_"},
    ).result_rows
    dropped = []
    for (name,) in rows:
        client.command(f"DROP TABLE IF EXISTS {database}.`{name}`")
        dropped.append(name)
    if dropped:
        logger.info("staging_leftovers_dropped count=%d", len(dropped))
    return dropped


def _strings_as_bytes(schema: Any, _entries: Iterator[int] | None = None) -> Any:
    """The schema with every ``string`` read as ``bytes`` (the same encoding, no UTF-8 decoding).

    A map's keys are strings by definition, so a map becomes an array of (key: bytes, value)
    records: Avro encodes both as the same blocks of count-prefixed items.
    """
    entries = itertools.count() if _entries is None else _entries
    if schema == "string":
        return "bytes"
    if isinstance(schema, list):
        return [_strings_as_bytes(s, entries) for s in schema]
    if isinstance(schema, dict):
        out = dict(schema)
        if out.get("type") == "string":
            out["type"] = "bytes"
        if out.get("type") == "map":
            return {"type": "array", "items": {
                "type": "record", "name": f"_map_entry_{next(entries)}",
                "fields": [{"name": "key", "type": "bytes"},
                           {"name": "value", "type": _strings_as_bytes(out["values"], entries)}],
            }}
        for key in ("fields",):
            if key in out:
                out[key] = [{**f, "type": _strings_as_bytes(f["type"], entries)} for f in out[key]]
        for key in ("items", "values"):
            if key in out:
                out[key] = _strings_as_bytes(out[key], entries)
        if isinstance(out.get("type"), dict | list):
            out["type"] = _strings_as_bytes(out["type"], entries)
        return out
    return schema


_STRUCTURAL: dict[bytes, Any] = {}


def find_unparseable(writer: SchemaVersion, bodies: Sequence[bytes]) -> dict[int, str]:
    """Positions of the bodies that are not exactly one Avro record of ``writer``, with the reason."""
    parsed = _STRUCTURAL.get(writer.fingerprint)
    if parsed is None:
        parsed = fastavro.parse_schema(_strings_as_bytes(without_logical_types(writer.raw)))
        _STRUCTURAL[writer.fingerprint] = parsed
    bad: dict[int, str] = {}
    for i, body in enumerate(bodies):
        stream = io.BytesIO(body)
        try:
            fastavro.schemaless_reader(stream, parsed, None)
        except UnicodeDecodeError:
            # Map keys are always decoded as text: the engine parses this body and its rules name the
            # text that is not UTF-8 (a body also broken further on is found when the engine reads it).
            continue
        except Exception as err:  # corrupt input raises many types; the message names it
            bad[i] = f"DecodeError: the body is not an Avro record of schema v{writer.version}: {err}"[:500]
            continue
        if stream.tell() != len(body):
            bad[i] = (f"DecodeError: {len(body) - stream.tell()} trailing byte(s) after the Avro record"
                      f" of schema v{writer.version}")
    return bad
