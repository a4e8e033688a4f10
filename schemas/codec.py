"""Avro single-object encoding of audit events, resolved against every shipped schema.

Each message starts with 0xC3 0x01 and the CRC-64-AVRO fingerprint of the
writer's schema (Avro specification, "Single-object encoding"), so a reader can
pick the right writer schema for any version ever shipped and resolve it to
the newest one. Old producers and new consumers (and the reverse) keep working
without a flag day.
"""

from __future__ import annotations

import io
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from importlib import resources
from typing import Any

import fastavro
from fastavro.schema import to_parsing_canonical_form

from schemas.avro_writer import compile_writer
from schemas.errors import DecodeError, UnknownSchemaFingerprint

MAGIC = b"\xc3\x01"
HEADER_LENGTH = 10

_CRC64_EMPTY = 0xC15D213AA4D7A795


def _crc64_table() -> list[int]:
    table = []
    for i in range(256):
        fp = i
        for _ in range(8):
            fp = (fp >> 1) ^ (_CRC64_EMPTY & -(fp & 1))
        table.append(fp)
    return table


_TABLE = _crc64_table()


def crc64_avro(data: bytes) -> int:
    """The Rabin CRC-64 the Avro specification uses for schema fingerprints."""
    fp = _CRC64_EMPTY
    for byte in data:
        fp = (fp >> 8) ^ _TABLE[(fp ^ byte) & 0xFF]
    return fp


def fingerprint(schema: dict[str, Any]) -> bytes:
    """The 8 little-endian bytes that identify ``schema`` on the wire."""
    canonical = to_parsing_canonical_form(schema)
    return crc64_avro(canonical.encode("utf-8")).to_bytes(8, "little")


@dataclass(frozen=True)
class SchemaVersion:
    version: int
    raw: dict[str, Any]
    parsed: Any
    fingerprint: bytes
    # The same schema without logical-type annotations: identical bytes on the wire and the
    # same fingerprint (canonical form drops logicalType), but fastavro skips the per-value
    # uuid/datetime conversions. The consumer's reference decoder reads with it; encoding
    # uses the compiled writer (schemas/avro_writer.py).
    plain: Any


def without_logical_types(schema: Any) -> Any:
    """A copy of a schema (JSON form) with every ``logicalType`` annotation removed."""
    if isinstance(schema, dict):
        return {k: without_logical_types(v) for k, v in schema.items() if k != "logicalType"}
    if isinstance(schema, list):
        return [without_logical_types(s) for s in schema]
    return schema


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _micros(moment: datetime) -> int:
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


class EventCodec:
    """Encodes with one schema version and decodes any known one into the reader's version."""

    def __init__(self, versions: list[SchemaVersion], writer_version: int | None = None,
                 reader_version: int | None = None) -> None:
        if not versions:
            raise ValueError("an EventCodec needs at least one schema version")
        self._by_version = {v.version: v for v in versions}
        self._by_fingerprint = {v.fingerprint: v for v in versions}
        newest = max(self._by_version)
        self.writer = self._by_version[writer_version or newest]
        self.reader = self._by_version[reader_version or newest]
        self._header = MAGIC + self.writer.fingerprint
        self._write_body = compile_writer(without_logical_types(self.writer.raw))

    @property
    def versions(self) -> list[SchemaVersion]:
        return sorted(self._by_version.values(), key=lambda v: v.version)

    def encode(self, record: dict[str, Any]) -> bytes:
        """Serialise an Avro-shaped dict; raises ValueError/TypeError for values the schema refuses.

        ``id`` may be a UUID or its string, ``occurred_at`` an aware datetime or
        microseconds since the epoch.
        """
        plain = dict(record)
        occurred = plain.get("occurred_at")
        if isinstance(occurred, datetime):
            if occurred.tzinfo is None:
                raise ValueError("occurred_at must be timezone-aware")
            plain["occurred_at"] = _micros(occurred)
        plain["id"] = str(plain.get("id"))
        return self._header + self._write_body(plain)

    def writer_of(self, message: bytes) -> SchemaVersion:
        if len(message) < HEADER_LENGTH or message[:2] != MAGIC:
            raise DecodeError(
                "not an Avro single-object message (expected the 0xC3 0x01 marker and an 8-byte fingerprint)"
            )
        fp = bytes(message[2:HEADER_LENGTH])
        try:
            return self._by_fingerprint[fp]
        except KeyError:
            raise UnknownSchemaFingerprint(fp) from None

    def decode(self, message: bytes) -> dict[str, Any]:
        """The record in the reader's schema; raises DecodeError for anything unreadable."""
        writer = self.writer_of(message)
        reader = None if writer is self.reader else self.reader.parsed
        body = io.BytesIO(message[HEADER_LENGTH:])
        try:
            record: dict[str, Any] = fastavro.schemaless_reader(body, writer.parsed, reader)  # type: ignore[assignment]
        except Exception as err:  # fastavro raises many types for corrupt input
            raise DecodeError(f"the Avro body is corrupt or truncated ({type(err).__name__}: {err})") from err
        if body.tell() != len(message) - HEADER_LENGTH:
            raise DecodeError("the Avro body has trailing bytes after the event: the message is corrupt")
        return record


_VERSION_FILE = re.compile(r"audit_event_v(\d+)\.avsc$")


def load_schema_version(version: int, raw: dict[str, Any]) -> SchemaVersion:
    # Parsed once with fastavro's default write hint: a schema parsed with _write_hint=False is
    # parsed again on every read and write, which doubled the cost per event.
    parsed = fastavro.parse_schema(raw)
    plain = fastavro.parse_schema(without_logical_types(raw))
    return SchemaVersion(version, raw, parsed, fingerprint(raw), plain)


@lru_cache(maxsize=1)
def shipped_versions() -> tuple[SchemaVersion, ...]:
    """Every ``schemas/audit_event_vN.avsc`` in this build, oldest first."""
    found = []
    for entry in resources.files("schemas").iterdir():
        match = _VERSION_FILE.search(entry.name)
        if match:
            found.append(load_schema_version(int(match.group(1)), json.loads(entry.read_text("utf-8"))))
    return tuple(sorted(found, key=lambda v: v.version))


def default_codec() -> EventCodec:
    """Writes and reads the newest shipped version, reads every older one."""
    return EventCodec(list(shipped_versions()))
