from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from fastavro.schema import fingerprint as fastavro_fingerprint
from fastavro.schema import to_parsing_canonical_form

from schemas.codec import EventCodec, crc64_avro, default_codec, load_schema_version, shipped_versions
from schemas.compat import IncompatibleSchema, check_evolution
from schemas.errors import DecodeError, UnknownSchemaFingerprint
from schemas.event import Actor, AuditEvent, Target, uuid7


def _event() -> AuditEvent:
    return AuditEvent(uuid7(), "ws_1", datetime(2026, 3, 1, 9, 30, 0, 123456, tzinfo=UTC), "MEMBER_ROLE_CHANGED",
                      "members", Actor("user", "u1", "alex@example.com"), Target("user", "u2", "sam@example.com"),
                      {"role": "member"}, {"role": "admin", "scopes": ["a", "b"]})


def test_crc64_avro_matches_the_spec_for_the_empty_input_and_a_primitive_schema():
    assert crc64_avro(b"") == 0xC15D213AA4D7A795
    # fastavro writes the fingerprint as its little-endian bytes in hex, as the wire header carries it.
    int_schema = b'"int"'
    assert crc64_avro(int_schema).to_bytes(8, "little").hex() == fastavro_fingerprint('"int"', "CRC-64-AVRO")


def test_single_object_header_carries_the_writer_fingerprint():
    codec = default_codec()
    data = codec.encode(_event().to_record())
    assert data[:2] == b"\xc3\x01"
    canonical = to_parsing_canonical_form(codec.writer.raw)
    assert data[2:10] == crc64_avro(canonical.encode()).to_bytes(8, "little")


def test_an_event_round_trips_with_microseconds_and_structured_payload():
    codec = default_codec()
    event = _event()
    record = codec.decode(codec.encode(event.to_record()))
    assert str(record["id"]) == str(event.id)
    assert record["occurred_at"] == event.occurred_at
    assert record["payload"]["after"] == {"role": "admin", "scopes": ["a", "b"]}


def test_unknown_fingerprint_is_a_clear_error():
    data = bytearray(default_codec().encode(_event().to_record()))
    data[2:10] = b"\x00" * 8
    with pytest.raises(UnknownSchemaFingerprint, match="no shipped schema has the fingerprint"):
        default_codec().decode(bytes(data))


@pytest.mark.parametrize("garbage", [b"", b"\x00", b"hello world", b"\xc3\x01\x00"])
def test_garbage_is_a_decode_error(garbage):
    with pytest.raises(DecodeError):
        default_codec().decode(garbage)


def test_truncated_body_is_a_decode_error():
    data = default_codec().encode(_event().to_record())
    with pytest.raises(DecodeError, match="corrupt or truncated"):
        default_codec().decode(data[:-7])


def test_trailing_bytes_are_a_decode_error():
    data = default_codec().encode(_event().to_record())
    with pytest.raises(DecodeError):
        default_codec().decode(data + b"\x02\x04")


def _with_extra_optional_field(raw: dict[str, Any]) -> dict[str, Any]:
    evolved: dict[str, Any] = json.loads(json.dumps(raw))
    evolved["fields"].append({"name": "reason", "type": ["null", "string"], "default": None})
    return evolved


def test_new_schema_versions_read_old_events_and_old_readers_read_new_events():
    """A v2 with a new optional field: v1 readers read v2 events, v2 readers read v1 events."""
    newest = shipped_versions()[-1]
    evolved = load_schema_version(newest.version + 1, _with_extra_optional_field(newest.raw))
    old_codec = EventCodec([newest])  # an old consumer knows only what it shipped with
    both = [newest, evolved]
    new_writer = EventCodec(both, writer_version=evolved.version, reader_version=newest.version)
    record = _event().to_record() | {"reason": "quarterly access review"}
    v2_bytes = new_writer.encode(record)
    # An old reader that learned v2's schema (deployed schemas first) reads v2 events as v1.
    assert new_writer.decode(v2_bytes)["action"] == "MEMBER_ROLE_CHANGED"
    assert "reason" not in new_writer.decode(v2_bytes)
    # A v2 reader reads v1 events, filling the default.
    v1_bytes = old_codec.encode(_event().to_record())
    v2_reader = EventCodec(both, writer_version=newest.version, reader_version=evolved.version)
    assert v2_reader.decode(v1_bytes)["reason"] is None


def test_every_shipped_version_is_compatible_both_ways_with_every_older_one():
    check_evolution(list(shipped_versions()))


def test_the_evolution_check_accepts_an_added_optional_field():
    newest = shipped_versions()[-1]
    evolved = load_schema_version(newest.version + 1, _with_extra_optional_field(newest.raw))
    check_evolution([*shipped_versions(), evolved])


@pytest.mark.parametrize(
    "breaking_change",
    [
        pytest.param(lambda raw: raw["fields"].append({"name": "reason", "type": "string"}),
                     id="required field without default"),
        pytest.param(lambda raw: next(f for f in raw["fields"] if f["name"] == "workspace_id").update(type="long"),
                     id="type changed"),
        pytest.param(lambda raw: raw["fields"].remove(next(f for f in raw["fields"] if f["name"] == "actor")) or
                     raw["fields"].append({"name": "actor", "type": "string"}), id="record became a string"),
    ],
)
def test_the_evolution_check_fails_a_version_that_breaks_older_ones(breaking_change):
    newest = shipped_versions()[-1]
    raw = json.loads(json.dumps(newest.raw))
    breaking_change(raw)
    broken = load_schema_version(newest.version + 1, raw)
    with pytest.raises(IncompatibleSchema):
        check_evolution([*shipped_versions(), broken])


def test_schema_files_are_numbered_from_one_without_gaps():
    assert [v.version for v in shipped_versions()] == list(range(1, len(shipped_versions()) + 1))
