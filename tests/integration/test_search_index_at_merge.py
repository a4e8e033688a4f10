"""The consumer leaves the search index to the engine's merges (``consumer.indexes_built_at_merge``):
an event is found by search before its part is merged, and merges build the index that prunes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clickhouse.client import get_client
from consumer.store import EventStore
from query_api.filters import EventFilters
from query_api.queries import build_where
from query_api.search import SearchLimits, parse_search
from schemas.catalog import load_catalog
from schemas.codec import default_codec
from tests.support.messages import encode, record
from tests.support.pipeline import all_pages, api_client, bearer
from tests.support.skip_index import granules_kept

pytestmark = pytest.mark.clickhouse

LIMITS = SearchLimits(max_chars=256, max_terms=8)
WS = "ws_fresh"


def _batch(start: int, n: int, needles: dict[int, str]) -> list[tuple[int, int, bytes, bytes]]:
    at = datetime(2026, 6, 1, tzinfo=UTC)
    messages = []
    for i in range(start, start + n):
        rec = record(WS, occurred_at=at + timedelta(seconds=i))
        rec["payload"] = {"before": None, "after": {"note": needles.get(i, "hay")}}
        messages.append((0, i, WS.encode(), encode(rec)))
    return messages


def _store(clickhouse_settings, indexes: tuple[str, ...]) -> EventStore:
    return EventStore(get_client(clickhouse_settings.clickhouse.dsn), database=clickhouse_settings.clickhouse.database,
                      events_table=clickhouse_settings.events_table, codec=default_codec(), catalog=load_catalog(),
                      indexes_built_at_merge=indexes)


def _kept(clickhouse_settings, term: str) -> tuple[int, int]:
    query = build_where(WS, EventFilters(q=parse_search(term, LIMITS)))
    return granules_kept(get_client(clickhouse_settings.clickhouse.dsn), clickhouse_settings.events_table, query,
                         "idx_search")


def test_a_fresh_unmerged_part_without_the_index_is_searched_and_merges_build_the_index(clickhouse_settings):
    client = get_client(clickhouse_settings.clickhouse.dsn)
    table = clickhouse_settings.events_table
    client.command(f"SYSTEM STOP MERGES {table}")
    try:
        store = _store(clickhouse_settings, ("idx_search",))
        for b in range(3):
            result = store.store(_batch(b * 20_000, 20_000, {b * 20_000 + 777: f"needle-{b}-zq"}), f"fresh-{b}")
            assert result.stored == 20_000 and not result.dead_letters
        # Nothing merged: no part has the search index, so the index cannot drop any granule of them.
        kept, total = _kept(clickhouse_settings, "needle-1-zq")
        assert total >= 3 and kept == total, f"an unindexed part was pruned: kept {kept} of {total}"
        api = api_client(clickhouse_settings)
        headers = bearer(clickhouse_settings, WS)
        url = f"/v1/workspaces/{WS}/audit/events"
        for b in range(3):
            found = all_pages(api, url, headers, {"q": f"needle-{b}-zq", "limit": 50})
            assert [e["payload"]["after"]["note"] for e in found] == [f"needle-{b}-zq"]
    finally:
        client.command(f"SYSTEM START MERGES {table}")
    client.command(f"OPTIMIZE TABLE {table} FINAL")
    kept, total = _kept(clickhouse_settings, "needle-1-zq")
    assert kept == 1 and total >= 3, f"the merge built no index that prunes: kept {kept} of {total}"
    found = all_pages(api, url, headers, {"q": "needle-2-zq"})
    assert [e["payload"]["after"]["note"] for e in found] == ["needle-2-zq"]


def test_without_the_deferral_the_insert_builds_the_index(clickhouse_settings):
    client = get_client(clickhouse_settings.clickhouse.dsn)
    client.command(f"SYSTEM STOP MERGES {clickhouse_settings.events_table}")
    try:
        result = _store(clickhouse_settings, ()).store(_batch(0, 30_000, {777: "needle-0-zq"}), "built-on-insert")
        assert result.stored == 30_000
        kept, total = _kept(clickhouse_settings, "needle-0-zq")
        assert kept == 1 and total >= 3, f"kept {kept} of {total}"
    finally:
        client.command(f"SYSTEM START MERGES {clickhouse_settings.events_table}")


def test_an_unknown_index_name_is_reported_and_the_batch_is_stored(clickhouse_settings, caplog):
    store = _store(clickhouse_settings, ("idx_search", "idx_no_such_index"))
    with caplog.at_level("WARNING", logger="consumer.store"):
        result = store.store(_batch(0, 50, {7: "needle-x-zq"}), "unknown-index")
    assert result.stored == 50
    assert any("idx_no_such_index" in r.getMessage() for r in caplog.records)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batches=st.lists(st.integers(min_value=1, max_value=400), min_size=1, max_size=4),
       needle_at=st.integers(min_value=0, max_value=10_000), merge=st.booleans())
def test_search_finds_the_same_events_whether_or_not_the_index_was_built(clickhouse_settings, batches, needle_at,
                                                                         merge):
    """With some parts indexed (built on insert or by a merge) and some not, a search's answer is the
    answer of a scan without any skip index."""
    client = get_client(clickhouse_settings.clickhouse.dsn)
    table = clickhouse_settings.events_table
    client.command(f"TRUNCATE TABLE {table}")
    start = 0
    for n, size in enumerate(batches):
        needles = {i: f"pin-{i % 7}-zq" for i in range(start, start + size) if (i + needle_at) % 97 == 0}
        _store(clickhouse_settings, ("idx_search",) if n % 2 == 0 else ()).store(
            _batch(start, size, needles), f"mixed-{needle_at}-{n}-{start}")
        start += size
    if merge:
        client.command(f"OPTIMIZE TABLE {table} FINAL")
    for term in ("pin-3-zq", "pin-0-zq", "hay"):
        query = build_where(WS, EventFilters(q=parse_search(term, LIMITS)))
        sql = f"SELECT toString(id) FROM {table} WHERE {query.where} ORDER BY occurred_at, id"
        indexed = client.query(sql, parameters=query.parameters).result_rows
        scanned = client.query(sql, parameters=query.parameters, settings={"use_skip_indexes": 0}).result_rows
        assert indexed == scanned
