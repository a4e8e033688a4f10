"""Copies of an event that the ReplacingMergeTree has not merged yet are never shown twice."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from clickhouse.client import get_client
from producers.synthetic import EventGenerator
from tests.support.pipeline import all_pages, api_client, api_context, bearer, store_directly

pytestmark = pytest.mark.clickhouse

WS = "ws_dupes"


@pytest.fixture
def duplicated(clickhouse_settings):
    client = get_client(clickhouse_settings.clickhouse.dsn)
    client.command(f"SYSTEM STOP MERGES {clickhouse_settings.events_table}")
    start = datetime(2026, 3, 1, tzinfo=UTC)
    events = list(EventGenerator(seed=4).history([WS], 60, start, start + timedelta(days=2)))
    # The same events stored three times, as three crashed-and-retried batches would store them.
    for attempt in range(3):
        store_directly(clickhouse_settings, events, token=f"attempt-{attempt}")
    raw = client.query(f"SELECT count() FROM {clickhouse_settings.events_table}").result_rows[0][0]
    assert raw == 180, "the copies were merged or deduplicated before the test could read them"
    expected = [str(e.id) for e in sorted(events, key=lambda e: (e.occurred_at, e.id), reverse=True)]
    return clickhouse_settings, expected


@pytest.mark.parametrize("limit", [1, 5, 50, 200])
def test_pages_show_each_event_once_even_when_copies_outnumber_the_page(duplicated, limit):
    settings, expected = duplicated
    client = api_client(settings)
    got = all_pages(client, f"/v1/workspaces/{WS}/audit/events", bearer(settings, WS), {"limit": limit})
    assert [e["id"] for e in got] == expected


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_exports_show_each_event_once(duplicated, fmt):
    import csv
    import io

    settings, expected = duplicated
    client = api_client(settings)
    body = client.get(f"/v1/workspaces/{WS}/audit/export", headers=bearer(settings, WS), params={"format": fmt}).text
    if fmt == "jsonl":
        ids = [json.loads(line)["id"] for line in body.splitlines() if line]
    else:
        ids = [row["id"] for row in csv.DictReader(io.StringIO(body))]
    assert ids == expected


def test_export_chunk_boundaries_do_not_split_or_repeat_copies(duplicated):
    from query_api.export import EventExporter
    from query_api.filters import EventFilters

    settings, expected = duplicated
    context = api_context(api_client(settings))
    exporter = EventExporter(context.client, settings.events_table, chunk_rows=7)
    chunks = list(exporter.chunks(WS, EventFilters(), "jsonl"))
    ids = [json.loads(line)["id"] for chunk in chunks for line in chunk.decode().splitlines() if line]
    assert ids == expected


def test_pages_continue_seamlessly_across_the_recent_window_and_the_rest(clickhouse_settings):
    """A page that starts in the newest days and ends in older history shows each event once, in order."""
    now = datetime.now(UTC)
    generator = EventGenerator(seed=17)
    recent = list(generator.history([WS], 25, now - timedelta(days=1), now))
    older = list(generator.history([WS], 25, now - timedelta(days=90), now - timedelta(days=3)))
    store_directly(clickhouse_settings, recent + older, token="a")
    store_directly(clickhouse_settings, recent[:5] + older[-5:], token="b")  # copies near the boundary
    expected = [str(e.id) for e in sorted(recent + older, key=lambda e: (e.occurred_at, e.id), reverse=True)]
    client = api_client(clickhouse_settings)
    got = all_pages(client, f"/v1/workspaces/{WS}/audit/events", bearer(clickhouse_settings, WS), {"limit": 7})
    assert [e["id"] for e in got] == expected


def test_a_page_spanning_the_newest_days_a_sized_window_and_the_rest_shows_each_event_once(clickhouse_settings):
    """10 events in the newest two days size a second window (~16 days); the page ends in older history."""
    ws = "ws_three_windows"
    now = datetime.now(UTC)
    generator = EventGenerator(seed=23)
    newest = list(generator.history([ws], 10, now - timedelta(days=1, hours=12), now))
    middle = list(generator.history([ws], 15, now - timedelta(days=15), now - timedelta(days=3)))
    oldest = list(generator.history([ws], 40, now - timedelta(days=200), now - timedelta(days=30)))
    everything = newest + middle + oldest
    store_directly(clickhouse_settings, everything, token="a")
    store_directly(clickhouse_settings, newest[-2:] + middle[:3] + middle[-3:] + oldest[:3], token="b")
    expected = [str(e.id) for e in sorted(everything, key=lambda e: (e.occurred_at, e.id), reverse=True)]
    client = api_client(clickhouse_settings)
    path, auth = f"/v1/workspaces/{ws}/audit/events", bearer(clickhouse_settings, ws)
    first = client.get(path, headers=auth, params={"limit": 50}).json()
    assert [e["id"] for e in first["data"]] == expected[:50]
    assert [e["id"] for e in all_pages(client, path, auth, {"limit": 50})] == expected
