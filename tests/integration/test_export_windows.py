"""The export's adaptive time windows and read-back positions never drop, repeat or reorder a row.

The exporter reads one time window per query and continues from a chunk's
last row read back from the formatted bytes; bursts (many rows at one
instant), long gaps and CSV fields that hold line ends and quotes are where
that could go wrong.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
from datetime import UTC, datetime, timedelta

import pytest

from producers.synthetic import EventGenerator
from query_api.export import EventExporter
from query_api.filters import EventFilters
from schemas.event import RequestContext
from tests.support.pipeline import all_pages, api_client, bearer, store_directly

pytestmark = pytest.mark.clickhouse

WS = "ws_windows"
START = datetime(2025, 1, 1, tzinfo=UTC)
# Looks like the start of a CSV record: a naive "last line" reader would take it for one.
TRICKY_AGENT = 'agent\n00000000-0000-7000-8000-000000000000,"ws_windows","2020-01-01T00:00:00.000000Z"\n"x'


@pytest.fixture
def history(clickhouse_settings):
    gen = EventGenerator(seed=11)
    spread = list(gen.history([WS], 60, START, START + timedelta(days=3)))
    burst_at = START + timedelta(days=200)  # after a long gap
    burst = [gen.event(WS, burst_at) for _ in range(40)]  # one instant, many rows
    late = list(gen.history([WS], 30, START + timedelta(days=400), START + timedelta(days=401)))
    tricky = [dataclasses.replace(e, context=RequestContext(ip="10.0.0.1", user_agent=TRICKY_AGENT,
                                                             request_id="req_1", service="web"))
              for e in late[::3]]
    store_directly(clickhouse_settings, spread + burst + late[1::3] + late[2::3] + tricky)
    client = api_client(clickhouse_settings)
    pages = all_pages(client, f"/v1/workspaces/{WS}/audit/events", bearer(clickhouse_settings, WS), {"limit": 200})
    assert len(pages) == 130
    return clickhouse_settings, client, pages


def _same_instant(a: str, b: str) -> bool:
    return datetime.fromisoformat(a) == datetime.fromisoformat(b)


@pytest.mark.parametrize("chunk_rows", [1, 7, 25, 1000])
def test_jsonl_export_equals_the_pages_object_for_object(history, chunk_rows):
    settings, client, pages = history
    exporter = EventExporter(client.app.state.context.client, settings.events_table, chunk_rows=chunk_rows,
                             piece_bytes=300)
    body = b"".join(exporter.chunks(WS, EventFilters(), "jsonl"))
    lines = [json.loads(line) for line in body.decode().splitlines()]
    assert [e["id"] for e in lines] == [p["id"] for p in pages]
    for line, page in zip(lines, pages, strict=True):
        assert line["occurred_at"].endswith("Z") and _same_instant(line["occurred_at"], page["occurred_at"])
        assert {**line, "occurred_at": None} == {**page, "occurred_at": None}


@pytest.mark.parametrize("chunk_rows", [1, 7, 25])
def test_csv_export_survives_fields_with_line_ends_and_quotes_at_chunk_ends(history, chunk_rows):
    settings, client, pages = history
    exporter = EventExporter(client.app.state.context.client, settings.events_table, chunk_rows=chunk_rows)
    body = b"".join(exporter.chunks(WS, EventFilters(), "csv")).decode()
    rows = list(csv.DictReader(io.StringIO(body)))
    assert [r["id"] for r in rows] == [p["id"] for p in pages]
    assert sum(r["user_agent"] == TRICKY_AGENT for r in rows) == 10
    assert all(json.loads(r["payload"]) == p["payload"] for r, p in zip(rows, pages, strict=True))


def test_export_with_a_time_filter_equals_the_filtered_pages(history):
    settings, client, _ = history
    params = {"since": "2025-07-01", "until": "2026-02-05T12:00:00+00:00"}
    headers = bearer(settings, WS)
    pages = all_pages(client, f"/v1/workspaces/{WS}/audit/events", headers, {"limit": 200, **params})
    body = client.get(f"/v1/workspaces/{WS}/audit/export", headers=headers, params={"format": "jsonl", **params})
    assert body.status_code == 200
    exported = [json.loads(line)["id"] for line in body.text.splitlines()]
    assert exported == [p["id"] for p in pages] and 0 < len(exported) < 130


def test_an_empty_export_is_empty_jsonl_and_a_bare_csv_header(history):
    settings, client, _ = history
    exporter = EventExporter(client.app.state.context.client, settings.events_table)
    assert b"".join(exporter.chunks("ws_nobody", EventFilters(), "jsonl")) == b""
    header = b"".join(exporter.chunks("ws_nobody", EventFilters(), "csv")).decode()
    assert header.strip().split(",")[:3] == ['"id"', '"workspace_id"', '"occurred_at"']
