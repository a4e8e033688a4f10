"""The Python side of staging (consumer/staging.py): the Avro block the engine parses, and the bodies it can't."""

from __future__ import annotations

import dataclasses
import io
from datetime import UTC, datetime, timedelta
from typing import Any

import fastavro
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from consumer.staging import find_unparseable, staged_block, staged_schema
from producers.synthetic import EventGenerator
from schemas.codec import HEADER_LENGTH, default_codec
from schemas.errors import DecodeError
from schemas.event import AuditEvent, RequestContext

CODEC = default_codec()
WRITER = CODEC.writer
GENERATOR = EventGenerator(seed=17)
START = datetime(2026, 1, 1, tzinfo=UTC)

_text = st.text(st.characters(exclude_categories=["Cs"]), max_size=12)
_value = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False), _text, st.lists(_text, max_size=3),
)
_payload = st.one_of(st.none(), st.dictionaries(_text.filter(bool), _value, max_size=4))
_event_shape = st.tuples(_payload, _payload, st.booleans())  # before, after, has a request context


def _event(i: int, before: Any = None, after: Any = None, context: bool = True) -> AuditEvent:
    event = GENERATOR.event(f"ws_{i % 3}", START + timedelta(seconds=i, microseconds=i))
    return dataclasses.replace(event, before=before, after=after,
                               context=event.context if context else None)


def _body(record: dict[str, Any]) -> bytes:
    return CODEC.encode(record)[HEADER_LENGTH:]


def _same(read: Any, written: Any) -> bool:
    """Equal, and of the same type all the way down (so True is not 1 and 1 is not 1.0)."""
    if isinstance(written, dict):
        return isinstance(read, dict) and read.keys() == written.keys() and all(
            _same(read[k], written[k]) for k in written)
    if isinstance(written, list | tuple):
        return isinstance(read, list) and len(read) == len(written) and all(
            _same(r, w) for r, w in zip(read, written, strict=True))
    return type(read) is type(written) and read == written


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(shapes=st.lists(_event_shape, max_size=30))
def test_a_staged_block_is_an_avro_container_of_the_records_numbered_in_order(shapes):
    records = [_event(i, before, after, context).to_record() for i, (before, after, context) in enumerate(shapes)]

    messages = [CODEC.encode(r) for r in records]
    bodies = [m[HEADER_LENGTH:] for m in messages]
    block = staged_block(WRITER, messages)

    reader = fastavro.reader(io.BytesIO(block))
    assert isinstance(reader.writer_schema, dict)
    assert reader.writer_schema["fields"][0] == {"name": "_seq", "type": "long"}
    read: list[dict[str, Any]] = []
    for record in reader:
        assert isinstance(record, dict)
        read.append(record)
    assert [r["_seq"] for r in read] == list(range(len(records)))
    assert [r["_header"] for r in read] == [m[:HEADER_LENGTH] for m in messages]
    for got, want in zip(read, records, strict=True):
        assert str(got["id"]) == want["id"]
        assert got["occurred_at"] == want["occurred_at"]
        for name in ("workspace_id", "action", "category", "actor", "target", "payload", "context"):
            assert _same(got[name], want[name]), name
    assert find_unparseable(WRITER, bodies) == {}
    if records:  # one block holding every record
        assert [b.num_records for b in fastavro.block_reader(io.BytesIO(block))] == [len(records)]


def test_the_staged_schema_is_the_writer_schema_with_seq_and_the_message_header_first():
    schema = staged_schema(WRITER)
    assert schema["fields"][0] == {"name": "_seq", "type": "long"}
    assert schema["fields"][1]["name"] == "_header"
    assert schema["fields"][1]["type"] == {"type": "fixed", "name": "_single_object_header", "size": HEADER_LENGTH}
    assert schema["fields"][2:] == WRITER.raw["fields"]
    assert WRITER.raw["fields"][0]["name"] != "_seq"  # the writer's schema is not changed


def _with_invalid_utf8(placeholder_in: str) -> bytes:
    """A body whose ``placeholder_in`` string has bytes that are not UTF-8 (same length, so still Avro)."""
    placeholder = "QQQQQQQQ"
    event = _event(1, before={"role": "member"}, after={"role": "admin"})
    if placeholder_in == "actor.display":
        event = dataclasses.replace(event, actor=dataclasses.replace(event.actor, display=placeholder))
    elif placeholder_in == "payload key":
        event = dataclasses.replace(event, after={placeholder: "admin"})
    elif placeholder_in == "payload value":
        event = dataclasses.replace(event, after={"role": placeholder})
    else:
        event = dataclasses.replace(event, context=RequestContext(user_agent=placeholder))
    body = _body(event.to_record())
    assert body.count(placeholder.encode()) == 1
    return body.replace(placeholder.encode(), b"\xff\xfe\xc3(\xed\xa0\x80Q")


@pytest.mark.parametrize("where", ["actor.display", "payload key", "payload value", "context.user_agent"])
def test_bodies_with_text_that_is_not_utf8_parse_so_the_engine_rules_can_name_them(where):
    body = _with_invalid_utf8(where)
    with pytest.raises(DecodeError):  # the strict reader refuses it...
        CODEC.decode(CODEC.encode(_event(0).to_record())[:HEADER_LENGTH] + body)

    assert find_unparseable(WRITER, [body]) == {}  # ...the structural one reads it


def test_truncated_bodies_trailing_bytes_and_garbage_are_unparseable_with_a_decode_error_reason():
    good = _body(_event(0).to_record())
    bodies = [good, good[:-5], _with_invalid_utf8("actor.display"), good + b"\x00\x02", b"\xff" * 40, b"", good]

    found = find_unparseable(WRITER, bodies)

    assert sorted(found) == [1, 3, 4, 5]
    assert all(reason.startswith("DecodeError: ") for reason in found.values())
    assert f"not an Avro record of schema v{WRITER.version}" in found[1]
    assert "2 trailing byte(s)" in found[3]
    assert "not an Avro record" in found[4] and "not an Avro record" in found[5]


def test_every_body_of_a_valid_batch_parses():
    bodies = [_body(_event(i, {"a": i}, {"a": float(i)}).to_record()) for i in range(50)]
    assert find_unparseable(WRITER, bodies) == {}
