"""The compiled Avro writer writes fastavro's bytes, and refuses what the schema refuses."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from typing import Any

import fastavro
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from producers.synthetic import EventGenerator
from schemas.avro_writer import UnsupportedSchema, compile_writer
from schemas.codec import default_codec, shipped_versions, without_logical_types

SCHEMA = without_logical_types(shipped_versions()[-1].raw)
WRITE = compile_writer(SCHEMA)
PARSED = fastavro.parse_schema(SCHEMA)


def _fastavro(record: dict[str, Any]) -> bytes:
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, PARSED, record)
    return buf.getvalue()


def _record(before: Any = None, after: Any = None, context: Any = None, occurred: int = 1_700_000_000_000_000,
            text: str = "x") -> dict[str, Any]:
    return {
        "id": "0190a5a4-0000-7000-8000-000000000001", "workspace_id": text, "occurred_at": occurred,
        "action": "MEMBER_ROLE_CHANGED", "category": "members",
        "actor": {"kind": "user", "id": "u1", "display": text}, "target": {"kind": "member", "id": "m", "display": ""},
        "payload": {"before": before, "after": after}, "context": context,
    }


def test_generated_events_encode_to_the_same_bytes_as_fastavro():
    codec = default_codec()
    events = EventGenerator(seed=5).history([f"ws_{i}" for i in range(5)], 3000,
                                            datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 3, 1, tzinfo=UTC))
    for event in events:
        record = event.to_record()
        body = codec.encode(record)[10:]
        plain = dict(record, id=str(record["id"]), occurred_at=_micros(record["occurred_at"]))
        assert body == _fastavro(plain)


def _micros(moment: datetime) -> int:
    delta = moment - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


payload_values = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(1 << 63), max_value=(1 << 63) - 1),
    st.floats(allow_nan=False), st.text(), st.lists(st.text(), max_size=4),
)
payload_maps = st.one_of(st.none(), st.dictionaries(st.text(min_size=1), payload_values, max_size=5))
contexts = st.one_of(st.none(), st.fixed_dictionaries({
    "ip": st.one_of(st.none(), st.text()), "user_agent": st.one_of(st.none(), st.text()),
    "request_id": st.one_of(st.none(), st.text()), "service": st.one_of(st.none(), st.text()),
}))


@settings(max_examples=300, deadline=None)
@given(before=payload_maps, after=payload_maps, context=contexts, text=st.text(),
       occurred=st.integers(min_value=-(1 << 63), max_value=(1 << 63) - 1))
def test_any_value_the_schema_allows_encodes_like_fastavro(before, after, context, text, occurred):
    record = _record(before, after, context, occurred, text)
    assert WRITE(record) == _fastavro(record)


@pytest.mark.parametrize("record, error", [
    (_record(after={"role": {"nested": "map"}}), ValueError),
    (_record(after={"when": datetime(2026, 1, 1, tzinfo=UTC)}), ValueError),
    (_record(after={"scopes": ["read", 3]}), TypeError),
    (_record(after={"n": 1 << 64}), ValueError),
    (_record(text=None), TypeError),  # type: ignore[arg-type]
    ({**_record(), "actor": "alex"}, TypeError),
    ({k: v for k, v in _record().items() if k != "action"}, ValueError),
])
def test_values_the_schema_refuses_raise_with_the_field_path(record, error):
    with pytest.raises(error) as raised:
        WRITE(record)
    assert "record" in str(raised.value) or "expected" in str(raised.value)


def test_a_missing_field_with_a_default_takes_the_default():
    record = _record()
    del record["context"]
    assert WRITE(record) == _fastavro({**record, "context": None})


def test_types_the_writer_does_not_compile_are_refused_when_the_codec_is_built():
    with pytest.raises(UnsupportedSchema, match="enum"):
        compile_writer({"type": "record", "name": "R", "fields": [
            {"name": "e", "type": {"type": "enum", "name": "E", "symbols": ["A"]}}]})
