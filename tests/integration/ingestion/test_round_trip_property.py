"""What goes in comes out, in order, once: a property test through producer → Kafka → consumer → API.

Random workspaces (1 to a few hundred events each), time spreads from one second to the whole accepted
range, bursts, duplicate deliveries, id conflicts and hostile strings. The stored set equals the accepted
input (each id once, with its first content), the export holds it newest first, and everything refused is
on the dead-letter topic with a reason."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, note
from hypothesis import settings as hyp_settings
from hypothesis import strategies as st

from clickhouse.client import get_client
from consumer.dlq_replay import list_dead_letters
from schemas.contract import OCCURRED_AT_END, OCCURRED_AT_MIN
from tests.support.messages import consume_until_caught_up, encode, record, send_raw
from tests.support.pipeline import api_client, bearer

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse, pytest.mark.slow]

SPREADS = [timedelta(seconds=1), timedelta(hours=1), timedelta(days=38), timedelta(days=3650),
           OCCURRED_AT_END - OCCURRED_AT_MIN - timedelta(seconds=1)]
hostile = st.text(st.characters(exclude_categories=["Cs"]), min_size=1, max_size=20).filter(str.strip)


@st.composite
def histories(draw: Any) -> dict[str, Any]:
    spread = draw(st.sampled_from(SPREADS))
    start_span = OCCURRED_AT_END - OCCURRED_AT_MIN - spread
    start = OCCURRED_AT_MIN + timedelta(seconds=draw(st.integers(0, int(start_span.total_seconds()))))
    n = draw(st.integers(1, 120))
    burst = draw(st.booleans())  # many events in the same microsecond
    # The accepted range is [MIN, END): an offset of the whole spread from the latest start would be END itself.
    last = int(spread.total_seconds() * 1e6) - 1
    offsets = [0 if burst and draw(st.booleans()) else draw(st.integers(0, last)) for _ in range(n)]
    return {"start": start, "offsets": offsets, "actor": draw(hostile), "value": draw(hostile),
            "duplicates": draw(st.lists(st.integers(0, n - 1), max_size=5)),
            "conflicts": draw(st.lists(st.integers(0, n - 1), max_size=3, unique=True))}


# The last accepted microsecond (found by this test: an event at END was generated and rightly refused).
LAST_MICROSECOND = {"start": OCCURRED_AT_MIN + timedelta(seconds=1),
                    "offsets": [int((SPREADS[-1]).total_seconds() * 1e6) - 1, 0], "actor": "a", "value": "v",
                    "duplicates": [], "conflicts": []}


@hyp_settings(max_examples=6, deadline=None, suppress_health_check=list(HealthCheck))
@given(history=histories())
@example(history=LAST_MICROSECOND)
def test_each_accepted_event_comes_back_once_in_order_and_each_refused_one_is_dead_lettered(settings, history):
    note(repr(history))
    ws = f"ws_p{uuid.uuid4().hex[:10]}"
    records = []
    for i, offset in enumerate(history["offsets"]):
        at = history["start"] + timedelta(microseconds=offset)
        records.append(record(ws, occurred_at=at, id=str(uuid.uuid4()),
                              actor={"kind": "user", "id": f"usr_{i}", "display": history["actor"]},
                              payload={"before": {"k": history["value"]}, "after": {"n": i}}))
    messages = [encode(r) for r in records]
    messages += [encode(records[i]) for i in history["duplicates"]]
    conflicting = [{**records[i], "payload": {"before": None, "after": {"changed": True}}}
                   for i in history["conflicts"]]
    messages += [encode(r) for r in conflicting]
    dlq_before = len(list_dead_letters(settings, limit=10_000))
    send_raw(settings, [(ws.encode(), m) for m in messages])
    consume_until_caught_up(settings)

    response = api_client(settings).get(f"/v1/workspaces/{ws}/audit/export", headers=bearer(settings, ws),
                                        params={"format": "jsonl"})
    assert response.status_code == 200, response.text
    # Lines end with "\n" only: str.splitlines() would also split at U+0085 or U+2028 inside a value.
    exported = [json.loads(line) for line in response.text.split("\n") if line.strip()]
    stored = get_client(settings.clickhouse.dsn).query(
        f"SELECT toString(id), occurred_at, ingested_at FROM {settings.events_table}"
        " WHERE workspace_id = {ws:String}",
        parameters={"ws": ws}).result_rows
    note(f"stored {stored!r}; export snapshot {response.headers.get('X-Export-Snapshot', '')}")
    # The consumer inserts without collapsing rows of one key (optimize_on_insert = 0): the write-once step
    # must leave each id once in what it inserts, not twice waiting for a merge or a FINAL read.
    assert sorted(str(i) for i, _, _ in stored) == sorted(str(r["id"]) for r in records)
    # Each accepted id once, newest first (ties in the same microsecond in the engine's id order).
    assert sorted(e["id"] for e in exported) == sorted(str(r["id"]) for r in records)
    by_id = {str(r["id"]): r for r in records}
    times = [datetime.fromisoformat(e["occurred_at"].replace("Z", "+00:00")) for e in exported]
    assert times == sorted(times, reverse=True)
    for event, at in zip(exported, times, strict=True):
        original = by_id[event["id"]]
        assert at == original["occurred_at"]
        assert event["actor"]["display"] == history["actor"]
        assert event["payload"]["before"] == {"k": history["value"]}, "an id lost its first content"
        assert event["payload"]["after"] == original["payload"]["after"]
    letters = list_dead_letters(settings, limit=10_000)[dlq_before:]
    assert len(letters) == len(conflicting)
    assert all(letter.reason.startswith("id conflict") for letter in letters)
    assert all(datetime.fromisoformat(e["occurred_at"].replace("Z", "+00:00")).tzinfo == UTC for e in exported)
