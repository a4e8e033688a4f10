"""Leaf bytes: RFC 8785 (JCS) canonical JSON of the exported event, whatever spelling the export used."""

from __future__ import annotations

import json
import math
import re
import struct
from datetime import UTC, datetime, timedelta

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from transparency.canonical import jcs, leaf_bytes, leaf_object, number_to_string, row_leaf_bytes, uncovered_keys
from transparency.errors import InvalidCanonicalForm

# RFC 8785 Appendix B: IEEE-754 bit patterns and their ECMAScript strings.
RFC8785_NUMBERS = {
    "0000000000000000": "0", "8000000000000000": "0", "0000000000000001": "5e-324",
    "8000000000000001": "-5e-324", "7fefffffffffffff": "1.7976931348623157e+308",
    "ffefffffffffffff": "-1.7976931348623157e+308", "4340000000000000": "9007199254740992",
    "c340000000000000": "-9007199254740992", "4430000000000000": "295147905179352830000",
    "44b52d02c7e14af5": "9.999999999999997e+22", "44b52d02c7e14af6": "1e+23",
    "44b52d02c7e14af7": "1.0000000000000001e+23", "444b1ae4d6e2ef4e": "999999999999999700000",
    "444b1ae4d6e2ef4f": "999999999999999900000", "444b1ae4d6e2ef50": "1e+21",
    "3eb0c6f7a0b5ed8c": "9.999999999999997e-7", "3eb0c6f7a0b5ed8d": "0.000001",
    "41b3de4355555553": "333333333.3333332", "41b3de4355555554": "333333333.33333325",
    "41b3de4355555555": "333333333.3333333", "41b3de4355555556": "333333333.3333334",
    "41b3de4355555557": "333333333.33333343", "becbf647612f3696": "-0.0000033333333333333333",
    "43143ff3c1cb0959": "1424953923781206.2",
}


@pytest.mark.parametrize(("bits", "expected"), sorted(RFC8785_NUMBERS.items()))
def test_rfc8785_number_vectors(bits: str, expected: str) -> None:
    (value,) = struct.unpack(">d", bytes.fromhex(bits))
    assert number_to_string(value) == expected


def test_rfc8785_sample_object() -> None:
    text = ('{"numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001], '
            '"string": "\\u20ac$\\u000F\\u000aA\'\\u0042\\u0022\\u005c\\\\\\"\\/", "literals": [null, true, false]}')
    assert jcs(json.loads(text)) == (
        '{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],'
        '"string":"€$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}'
    ).encode()


def test_keys_sort_by_utf16_code_units() -> None:
    # RFC 8785 §3.2.3's example: U+1F600 (surrogates D83D DE00) sorts before U+FB33 in UTF-16 order.
    assert jcs({"\ufb33": 1, "\U0001f600": 2, "a": 3}) == '{"a":3,"\U0001f600":2,"\ufb33":1}'.encode()


_ES_NUMBER = re.compile(r"^-?(0|[1-9]\d*)(\.\d*[1-9])?(e[+-][1-9]\d*)?$")


@settings(max_examples=2000, deadline=None)
@given(st.floats(allow_nan=False, allow_infinity=False))
def test_numbers_round_trip_and_use_the_ecmascript_shape(x: float) -> None:
    text = number_to_string(x)
    assert float(text) == x
    assert _ES_NUMBER.match(text), text
    if x == int(x) and abs(x) <= 2**53:
        assert text == str(int(x))  # safe integers print as themselves
    if x == int(x) and abs(x) < 1e21:
        assert "." not in text and "e" not in text  # integral values below 1e21: digits only
    if "e" in text:
        assert abs(x) >= 1e21 or abs(x) < 1e-6


@settings(deadline=None)
@given(st.integers(-(2**53), 2**53))
def test_safe_integers_print_as_themselves(i: int) -> None:
    assert number_to_string(i) == str(i)


def test_nan_and_infinity_are_refused() -> None:
    for bad in (math.nan, math.inf, -math.inf):
        with pytest.raises(InvalidCanonicalForm):
            number_to_string(bad)


# --- events: the API's JSON and the export line give the same leaf bytes ---
json_scalars = st.none() | st.booleans() | st.integers(-(2**62), 2**62) | \
    st.floats(allow_nan=False, allow_infinity=False) | st.text()
payload_values = json_scalars | st.lists(st.text(), max_size=3)
payload_maps = st.none() | st.dictionaries(st.text(min_size=1, max_size=8), payload_values, max_size=5)


@st.composite
def events(draw: st.DrawFn) -> dict:
    micros = draw(st.integers(0, 10**6 - 1))
    when = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=draw(st.integers(0, 10**8)), microseconds=micros)
    text = st.text(max_size=12)
    return {
        "id": str(draw(st.uuids())),
        "workspace_id": draw(st.text(min_size=1, max_size=8)),
        "occurred_at": when,
        "action": "MEMBER_ROLE_CHANGED", "category": "members",
        "actor": {"kind": "user", "id": draw(text), "display": draw(text)},
        "target": {"kind": "user", "id": draw(text), "display": draw(text)},
        "payload": {"before": draw(payload_maps), "after": draw(payload_maps)},
        "context": {"ip": draw(text), "user_agent": draw(text), "request_id": draw(text), "service": draw(text)},
    }


def _export_spelling(event: dict) -> str:
    """The event as the JSONL export spells it: ISO time with six digits, payload as stored JSON text."""
    line = dict(event)
    line["occurred_at"] = event["occurred_at"].strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return json.dumps(line, ensure_ascii=True)


@settings(max_examples=300, deadline=None)
@given(events())
def test_api_json_and_export_line_hash_alike(event: dict) -> None:
    api = orjson.loads(orjson.dumps(event))  # pydantic/orjson spelling: "...Z" or "+00:00", non-ASCII raw
    export = json.loads(_export_spelling(event))
    assert leaf_bytes(api) == leaf_bytes(export) == leaf_bytes(event)
    # canonical bytes are a fixed point: JSON that canonicalises to itself; the template equals the generic path
    assert jcs(json.loads(leaf_bytes(event))) == leaf_bytes(event) == jcs(leaf_object(event))


@settings(max_examples=300, deadline=None)
@given(events())
def test_the_row_fast_path_equals_the_documented_form(event: dict) -> None:
    import uuid as uuid_mod

    from clickhouse.events import row_to_event

    a, t, c = event["actor"], event["target"], event["context"]
    row = (uuid_mod.UUID(event["id"]), event["occurred_at"], event["action"], event["category"], a["kind"], a["id"],
           a["display"], t["kind"], t["id"], t["display"], orjson.dumps(event["payload"]).decode(), c["ip"],
           c["user_agent"], c["request_id"], c["service"])
    assert row_leaf_bytes(row, event["workspace_id"]) == leaf_bytes(row_to_event(row, event["workspace_id"])) \
        == jcs(leaf_object(event))


def test_payload_names_above_u_d7ff_and_floats_take_the_generic_path() -> None:
    payload = {"before": {"\ue000": 1, "\U0001f600": 2.0}, "after": {"n": 1e21, "big": 2**60}}
    event = {"id": "0190f0a0-0000-7000-8000-00000000000a", "workspace_id": "w", "occurred_at": "2026-01-01T00:00:00Z",
             "action": "A", "category": "c", "actor": {"kind": "u", "id": "i", "display": "d"},
             "target": {"kind": "k", "id": "t", "display": "x"}, "payload": payload, "context": {}}
    text = leaf_bytes(event)
    assert text == jcs(leaf_object(event))
    assert '"before":{"\U0001f600":2,"\ue000":1}'.encode() in text and b'"n":1e+21' in text
    assert b'"big":1152921504606847000' in text  # ECMAScript: shortest digits, then zeros


@settings(max_examples=200, deadline=None)
@given(events(), st.data())
def test_any_change_to_a_covered_field_changes_the_leaf(event: dict, data: st.DataObject) -> None:
    field = data.draw(st.sampled_from(["workspace_id", "occurred_at", "actor", "payload", "context", "id"]))
    changed = json.loads(json.dumps({**event, "occurred_at": event["occurred_at"].isoformat()}))
    if field == "occurred_at":
        changed[field] = (event["occurred_at"] - timedelta(microseconds=1)).isoformat()
    elif field == "id":
        changed[field] = "00000000-0000-7000-8000-000000000000" if event["id"] != \
            "00000000-0000-7000-8000-000000000000" else "00000000-0000-7000-8000-000000000001"
    elif field == "workspace_id":
        changed[field] = event["workspace_id"] + "x"
    elif field == "actor":
        changed["actor"]["display"] += "x"
    elif field == "context":
        changed["context"]["ip"] += "1"
    else:
        changed["payload"]["after"] = {"forged": True} if changed["payload"]["after"] != {"forged": True} else None
    assert leaf_bytes(changed) != leaf_bytes(event)


def test_float_spelled_as_integer_and_occurred_at_spellings_agree() -> None:
    base = {"id": "0190F0A0-0000-7000-8000-00000000000A", "workspace_id": "ws", "action": "A", "category": "c",
            "actor": {"kind": "user", "id": "u", "display": "d"}, "target": {"kind": "k", "id": "t", "display": "x"},
            "context": {"ip": "", "user_agent": "", "request_id": "", "service": ""}}
    a = {**base, "occurred_at": "2026-03-01T09:30:00Z", "payload": json.loads('{"before":{"n":1.0},"after":null}')}
    b = {**base, "occurred_at": "2026-03-01T10:30:00.000000+01:00", "payload": json.loads('{"before":{"n":1}}')}
    assert leaf_bytes(a) == leaf_bytes(b)
    assert b'"occurred_at":"2026-03-01T09:30:00.000000Z"' in leaf_bytes(a)
    assert b'"id":"0190f0a0-0000-7000-8000-00000000000a"' in leaf_bytes(a)


def test_odd_types_in_covered_fields_take_the_generic_path() -> None:
    event = {"id": "0190f0a0-0000-7000-8000-00000000000a", "workspace_id": "w", "occurred_at": "2026-01-01T00:00:00Z",
             "action": "A", "category": "c", "actor": {"kind": "user", "id": 7, "display": None},
             "target": {"kind": "k", "id": "t", "display": "x"}, "payload": {}, "context": {"ip": 1}}
    assert leaf_bytes(event) == jcs(leaf_object(event))
    assert b'"actor":{"display":null,"id":7,"kind":"user"}' in leaf_bytes(event)


def test_missing_fields_and_extras_are_named() -> None:
    with pytest.raises(InvalidCanonicalForm, match="actor"):
        leaf_bytes({"id": "0190f0a0-0000-7000-8000-00000000000a", "workspace_id": "w",
                    "occurred_at": "2026-01-01T00:00:00Z",
                    "action": "A", "category": "c", "target": {}, "payload": {}, "context": {}})
    with pytest.raises(InvalidCanonicalForm, match="time zone"):
        leaf_object({"id": "0190f0a0-0000-7000-8000-00000000000a", "workspace_id": "w",
                     "occurred_at": "2026-01-01T00:00:00", "action": "A", "category": "c",
                     "actor": {"kind": "", "id": "", "display": ""}, "target": {"kind": "", "id": "", "display": ""},
                     "payload": {}, "context": {}})
    assert uncovered_keys({"id": 1, "log_index": 3, "actor": {"kind": 1, "extra": 2}}) == ["log_index", "actor.extra"]
