"""Readers in parallel on the real engine: the pool never hands on a failed query's leftovers, and many
pages and an export at once get exactly the rows one client alone gets."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clickhouse.client import get_client, open_client
from clickhouse.pool import ClientPool
from config.settings import Settings
from producers.synthetic import EventGenerator
from query_api.export import EventExporter
from query_api.filters import EventFilters
from query_api.queries import EventReader
from tests.support.pipeline import all_pages, api_client, api_context, bearer, reader_pages, store_directly

pytestmark = pytest.mark.clickhouse

WS = "ws_pool"
# A query that streams rows and then fails: chDB has already produced blocks when it throws.
FAILING = "SELECT number, throwIf(number = 30000) FROM numbers(100000) SETTINGS max_block_size = 1000"
GOOD = "SELECT number FROM numbers(3)"


def _pool(dsn: str, size: int = 1) -> ClientPool:
    return ClientPool(lambda: open_client(dsn), size, 10.0, "pages")


def test_without_replacement_a_chdb_handle_answers_the_next_query_with_the_failed_ones_rows(clickhouse_settings):
    """Why the pool replaces a handle after an error (chDB 26.9; if this starts failing, the reason is gone)."""
    client = open_client(clickhouse_settings.clickhouse.dsn)
    try:
        with pytest.raises(Exception, match="throwIf"):
            client.query(FAILING)
        assert client.query(GOOD).result_rows != [(0,), (1,), (2,)]
    finally:
        client.close()


def test_a_good_query_after_a_failing_one_on_the_pool_gets_exactly_its_rows(clickhouse_settings):
    pool = _pool(clickhouse_settings.clickhouse.dsn, size=1)
    with pytest.raises(Exception, match="throwIf"), pool.lease() as client:
        client.query(FAILING)
    with pool.lease() as client:
        assert client.query(GOOD).result_rows == [(0,), (1,), (2,)]
        assert client.raw_query(GOOD, fmt="TSV") == b"0\n1\n2\n"
    assert pool.replaced == 1
    pool.close()


@pytest.fixture
def stored(clickhouse_settings):
    now = datetime.now(UTC)
    events = list(EventGenerator(seed=5).history([WS], 600, now - timedelta(days=200), now))
    store_directly(clickhouse_settings, events)
    return clickhouse_settings, events


def _newest_first(events: list[Any]) -> list[str]:
    return [str(e.id) for e in sorted(events, key=lambda e: (e.occurred_at, e.id), reverse=True)]


def _jsonl_ids(data: bytes) -> list[str]:
    import orjson

    return [orjson.loads(line)["id"] for line in data.splitlines()]


def test_an_export_that_fails_midway_leaves_no_leftovers_for_the_pages_after_it(stored):
    settings, events = stored
    table = settings.events_table
    pool = _pool(settings.clickhouse.dsn, size=1)  # pages and the export share the one handle slot
    exporter = EventExporter(pool, table, chunk_rows=50)
    stream = exporter.chunks(WS, EventFilters(), "jsonl")
    next(stream)
    client = get_client(settings.clickhouse.dsn)
    client.command(f"RENAME TABLE {table} TO {table}_away")
    try:
        with pytest.raises(Exception, match=r"UNKNOWN_TABLE|does not exist"):
            list(stream)
    finally:
        client.command(f"RENAME TABLE {table}_away TO {table}")
    assert pool.replaced == 1
    assert reader_pages(EventReader(pool, table), WS, EventFilters(), 50) == _newest_first(events)


def test_a_cancelled_export_then_pages_get_exactly_their_rows(stored):
    settings, events = stored
    pool = _pool(settings.clickhouse.dsn, size=1)
    stream = EventExporter(pool, settings.events_table, chunk_rows=100, piece_bytes=1000).chunks(
        WS, EventFilters(), "jsonl")
    next(stream)
    stream.close()  # type: ignore[attr-defined]  # what the server does when the client goes away
    assert reader_pages(EventReader(pool, settings.events_table), WS, EventFilters(), 25) == _newest_first(events)


def test_many_threads_paging_and_an_export_at_once_all_get_exactly_right_results(stored):
    settings, events = stored
    table = settings.events_table
    dsn = settings.clickhouse.dsn
    actor = events[0].actor.display.split("@")[0][:4].lower()
    shapes = [EventFilters(), EventFilters(category="members"), EventFilters(actor=actor),
              EventFilters(since=events[200].occurred_at, until=events[400].occurred_at)]
    one_client = EventReader(get_client(dsn), table)
    expected = {i: reader_pages(one_client, WS, f, 20) for i, f in enumerate(shapes)}
    assert expected[0] == _newest_first(events)

    pages = ClientPool(lambda: open_client(dsn), 4, 30.0, "pages")
    exports = ClientPool(lambda: open_client(dsn), 1, 30.0, "exports")
    reader = EventReader(pages, table, max_threads=1)
    got: dict[tuple[int, int], list[str]] = {}
    exported: list[bytes] = []
    failures: list[BaseException] = []

    def walker(thread: int) -> None:
        try:
            for round_ in range(3):
                shape = (thread + round_) % len(shapes)
                got[(thread, round_)] = reader_pages(reader, WS, shapes[shape], 20)
        except BaseException as err:
            failures.append(err)

    def exporter() -> None:
        try:
            exported.append(b"".join(EventExporter(exports, table, chunk_rows=37, max_threads=1).chunks(
                WS, EventFilters(), "jsonl")))
        except BaseException as err:
            failures.append(err)

    threads = [threading.Thread(target=walker, args=(t,)) for t in range(8)] + [threading.Thread(target=exporter)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not failures, failures
    assert len(got) == 24
    for (thread, round_), ids in got.items():
        assert ids == expected[(thread + round_) % len(shapes)]
    assert _jsonl_ids(exported[0]) == expected[0]
    assert pages.replaced == exports.replaced == 0
    pages.close()
    exports.close()


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(actor=st.none() | st.sampled_from(["a", "@", "ex", "%", "_", "zz-none", "o"]),
       category=st.none() | st.sampled_from(["members", "tokens", "integrations"]),
       since_days=st.none() | st.integers(0, 210), span_days=st.none() | st.integers(0, 120),
       limit=st.integers(1, 80), threads=st.sampled_from([None, 1, 2]))
def test_the_same_filters_give_the_same_pages_through_the_pool_and_through_one_client(
        stored, actor, category, since_days, span_days, limit, threads):
    settings_, events = stored
    now = max(e.occurred_at for e in events)
    since = now - timedelta(days=since_days) if since_days is not None else None
    until = since + timedelta(days=span_days) if since is not None and span_days is not None else None
    filters = EventFilters(actor=actor, category=category, since=since, until=until)
    one = reader_pages(EventReader(get_client(settings_.clickhouse.dsn), settings_.events_table), WS, filters, limit)
    pool = _pool(settings_.clickhouse.dsn, size=2)
    try:
        assert reader_pages(EventReader(pool, settings_.events_table, max_threads=threads), WS, filters, limit) == one
    finally:
        pool.close()
    assert len(one) == len(set(one))


def _api(settings_: Settings, **api: Any) -> Any:
    return api_client(settings_.model_copy(update={"api": settings_.api.model_copy(update=api)}))


def test_when_every_handle_stays_busy_a_page_is_a_503_store_busy_and_an_export_is_refused_before_its_first_byte(
        stored):
    settings_, _ = stored
    client = _api(settings_, page_handles=1, export_handles=1, handle_wait_seconds=0.2)
    ctx = api_context(client)
    headers = bearer(settings_, WS)
    with ctx.pages.lease():
        busy = client.get(f"/v1/workspaces/{WS}/audit/events", headers=headers)
    assert busy.status_code == 503 and busy.json()["code"] == "store_busy" and busy.headers["retry-after"] == "1"
    with ctx.exports.lease():
        export = client.get(f"/v1/workspaces/{WS}/audit/export", headers=headers)
        assert client.get(f"/v1/workspaces/{WS}/audit/events", headers=headers).status_code == 200
    assert export.status_code == 503 and export.json()["code"] == "store_busy"
    assert client.get(f"/v1/workspaces/{WS}/audit/events", headers=headers).status_code == 200


def test_a_client_leaving_an_export_midway_over_http_leaves_the_pages_exact(stored):
    settings_, events = stored
    client = _api(settings_, page_handles=1, export_handles=1, export_chunk_rows=50)
    headers = bearer(settings_, WS)
    with client.stream("GET", f"/v1/workspaces/{WS}/audit/export", headers=headers) as response:
        assert response.status_code == 200
        next(response.iter_bytes())
    pages = all_pages(client, f"/v1/workspaces/{WS}/audit/events", headers, {"limit": 40})
    assert [e["id"] for e in pages] == _newest_first(events)
    exported = client.get(f"/v1/workspaces/{WS}/audit/export", headers=headers)
    assert _jsonl_ids(exported.content) == _newest_first(events)
