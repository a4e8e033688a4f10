"""The consumer enforces the contract's limits on both decode paths, and one bad event never makes a
workspace unreadable (issue 13, items 5, 6, 8), on the real broker and the real engine."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import pytest

from clickhouse.client import get_client
from consumer.dlq_replay import list_dead_letters
from tests.support.messages import consume_until_caught_up, encode, record, send_raw, with_bytes
from tests.support.pipeline import all_pages, api_client, bearer

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse]

PATHS = [pytest.param(True, id="engine-decode"), pytest.param(False, id="python-decode")]


def _path(settings, decode_in_engine: bool):
    return settings.model_copy(update={"consumer": settings.consumer.model_copy(
        update={"decode_in_engine": decode_in_engine})})


def _stored(settings, workspace: str) -> Sequence[Sequence[Any]]:
    return get_client(settings.clickhouse.dsn).query(
        f"SELECT toString(id), actor_display, payload FROM {settings.events_table} WHERE workspace_id = {{ws:String}}"
        " ORDER BY occurred_at", parameters={"ws": workspace}).result_rows


@pytest.mark.parametrize("decode_in_engine", PATHS)
def test_text_that_is_not_utf8_is_dead_lettered_and_the_workspace_stays_readable(settings, decode_in_engine):
    settings = _path(settings, decode_in_engine)
    ws = "ws_utf8"
    good = [record(ws, occurred_at=datetime(2026, 3, 1, 12, i, tzinfo=UTC)) for i in range(5)]
    bad = [
        with_bytes(record(ws, actor={"kind": "user", "id": "usr_9", "display": "PLACEHOLDER_A"}),
                   "PLACEHOLDER_A", b"bad\xff\xfe\xfd-name!!"),
        with_bytes(record(ws, payload={"before": {"KEY_PLACE": "x"}, "after": None}), "KEY_PLACE", b"k\xc3\x28ey_xxx"),
        with_bytes(record(ws, payload={"before": None, "after": {"role": "VALUE_PLACE"}}), "VALUE_PLACE",
                   b"\xed\xa0\x80value_xy"),  # an encoded surrogate: not UTF-8
        with_bytes(record(ws, context={"ip": "IP_PLACEHOLDER", "user_agent": None, "request_id": None,
                                       "service": None}), "IP_PLACEHOLDER", b"\x80" * 14),
    ]
    where = send_raw(settings, [(ws.encode(), encode(r)) for r in good[:2]] + [(ws.encode(), b) for b in bad]
                     + [(ws.encode(), encode(r)) for r in good[2:]])
    consume_until_caught_up(settings)

    assert [r[0] for r in _stored(settings, ws)] == [str(r["id"]) for r in good]
    letters = {(e.source_partition, e.source_offset): e for e in list_dead_letters(settings, limit=100)}
    for origin in where[2:2 + len(bad)]:
        assert "not valid UTF-8" in letters[origin].reason, letters[origin].reason
    client = api_client(settings)
    page = all_pages(client, f"/v1/workspaces/{ws}/audit/events", bearer(settings, ws), {"limit": 2})
    assert [e["id"] for e in page] == [str(r["id"]) for r in reversed(good)]
    export = client.get(f"/v1/workspaces/{ws}/audit/export", headers=bearer(settings, ws), params={"format": "jsonl"})
    assert export.status_code == 200
    export.content.decode("utf-8")  # strict: the export is valid UTF-8
    assert len([json.loads(line) for line in export.text.splitlines() if line.strip()]) == len(good)


OUT_OF_RANGE = [datetime(1, 1, 1, tzinfo=UTC), datetime(1899, 12, 31, 23, 59, 59, tzinfo=UTC),
                datetime(2300, 1, 1, tzinfo=UTC), datetime(9999, 12, 31, tzinfo=UTC)]
BAD_WORKSPACES = ["ws/a", "ws a", "ws\x00", "a\nb", "w" * 129, "ws_\U0001f600", ""]


@pytest.mark.parametrize("decode_in_engine", PATHS)
def test_values_outside_the_contract_are_dead_lettered_with_the_reason(settings, decode_in_engine):
    settings = _path(settings, decode_in_engine)
    edges = [datetime(1900, 1, 1, tzinfo=UTC), datetime(2299, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)]
    good = [record("ws_edges", occurred_at=at) for at in edges] + [record("w" * 128), record("a:b.c-d_E9")]
    bad = ([record("ws_range", occurred_at=at) for at in OUT_OF_RANGE]
           + [record(ws) for ws in BAD_WORKSPACES]
           + [record("ws_nan", payload={"before": {"x": float("nan")}, "after": None}),
              record("ws_inf", payload={"before": None, "after": {"x": float("-inf")}})])
    where = send_raw(settings, [(r["workspace_id"].encode() or b"k", encode(r)) for r in good + bad])
    consume_until_caught_up(settings)

    stored = get_client(settings.clickhouse.dsn).query(
        f"SELECT toString(id) FROM {settings.events_table}").result_rows
    assert sorted(r[0] for r in stored) == sorted(str(r["id"]) for r in good)
    letters = {(e.source_partition, e.source_offset): e for e in list_dead_letters(settings, limit=100)}
    assert len(letters) == len(bad)
    reasons = [letters[origin].reason for origin in where[len(good):]]
    for reason in reasons[:len(OUT_OF_RANGE)]:
        assert reason.startswith("InvalidEvent: occurred_at is outside the accepted range"), reason
    for reason in reasons[len(OUT_OF_RANGE):len(OUT_OF_RANGE) + len(BAD_WORKSPACES)]:
        assert reason.startswith("InvalidEvent: workspace_id"), reason
    assert all("NaN or an infinity" in r for r in reasons[-2:]), reasons[-2:]


def test_both_decode_paths_store_the_same_canonical_payload_text(settings):
    """The same payloads through each path: byte-identical JSON, ints exact, floats as the engine writes them."""
    shapes = [{"f": 1.0}, {"z": 0.0}, {"big": -1.8315e18}, {"i": 2**62}, {"tiny": 1e-7}, {"s": "é \"q\" \\ /"},
              {"list": ["a", "b"]}, {"t": True, "n": None}, {"huge": 1.5e300}, {"neg_int": -(2**63)}]
    texts = {}
    for decode_in_engine in (True, False):
        s = _path(settings, decode_in_engine).model_copy(update={"kafka": settings.kafka.model_copy(
            update={"topic": settings.kafka.topic + ("e" if decode_in_engine else "p")})})
        from consumer.topics import ensure_topics

        ensure_topics(s.kafka.bootstrap_servers, [s.kafka.topic], s.kafka.partitions)
        ws = f"ws_canon_{int(decode_in_engine)}"
        recs = [record(ws, occurred_at=datetime(2026, 1, 1, 0, 0, i, tzinfo=UTC),
                       payload={"before": shape, "after": {}}) for i, shape in enumerate(shapes)]
        send_raw(s, [(ws.encode(), encode(r)) for r in recs])
        consume_until_caught_up(s)
        texts[decode_in_engine] = [row[2] for row in _stored(s, ws)]
    assert texts[True] == texts[False]
    parsed = [json.loads(t) for t in texts[True]]
    assert [p["before"] for p in parsed] == shapes  # == compares 1.0 with 1: the same JSON number
    assert all(p["after"] is None for p in parsed), "an empty map is stored as null"
    assert json.loads(texts[True][3])["before"]["i"] == 2**62
    assert json.loads(texts[True][9])["before"]["neg_int"] == -(2**63)
