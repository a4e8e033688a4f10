"""Pages test their key conditions as PREWHERE and their text conditions after: the rows must not change.

Property-based on the real engine: random compositions of every filter (category, target kind, action,
actor substring, search, since / until), walked page by page with small pages and the cursor, over a
workspace stored with copies not merged yet, must return exactly the rows the filters' meaning selects
(computed here in Python from the stored rows), newest first, once each — and the same rows as the
plain ``WHERE`` the pages used before.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clickhouse.client import get_client
from clickhouse.events import SELECT_COLUMNS
from producers.synthetic import EventGenerator
from query_api.filters import EventFilters
from query_api.queries import EventReader, Query, build_where
from query_api.search import SearchLimits, parse_search
from tests.support.pipeline import reader_pages, store_directly

pytestmark = pytest.mark.clickhouse

WS = "ws_prewhere"
START = datetime(2026, 1, 1, tzinfo=UTC)
DAYS = 120
COLUMNS = [c.strip() for c in SELECT_COLUMNS.split(",")]
LIMITS = SearchLimits(max_chars=256, max_terms=8)


class PlainWhereReader(EventReader):
    """The page query as it was: every condition in one WHERE."""

    def _page_sql(self, query: Query, fetch: int) -> str:
        return (f"SELECT {SELECT_COLUMNS} FROM {self._table} WHERE {query.where}"
                f" ORDER BY occurred_at DESC, id DESC LIMIT {fetch}")


@pytest.fixture
def stored(clickhouse_settings) -> tuple[Any, list[dict[str, Any]]]:
    settings_ = clickhouse_settings
    events = list(EventGenerator(seed=29).history([WS, "ws_prewhere_other"], 900, START,
                                                  START + timedelta(days=DAYS)))
    store_directly(settings_, events)
    store_directly(settings_, events[::7], token="copies")  # copies not merged yet
    client = get_client(settings_.clickhouse.dsn)
    rows = client.query(
        f"SELECT {SELECT_COLUMNS} FROM {settings_.events_table} WHERE workspace_id = {{ws:String}}"
        " ORDER BY occurred_at DESC, id DESC LIMIT 1 BY id", parameters={"ws": WS}).result_rows
    reference = [dict(zip(COLUMNS, row, strict=True)) for row in rows]
    return settings_, reference


def _matches(row: dict[str, Any], f: EventFilters) -> bool:
    text = {c: str(v) for c, v in row.items() if c != "occurred_at"}
    at = row["occurred_at"].replace(tzinfo=UTC)
    return ((f.category is None or row["category"] == f.category)
            and (f.target_kind is None or row["target_kind"] == f.target_kind)
            and (f.action is None or row["action"] == f.action)
            and (f.actor is None or f.actor.lower() in row["actor_display"].lower())
            and (f.since is None or at >= f.since) and (f.until is None or at <= f.until)
            and (f.q is None or f.q.matches(text)))


@st.composite
def filter_sets(draw: st.DrawFn, rows: list[dict[str, Any]]) -> EventFilters:
    def one_of(column: str) -> str | None:
        return draw(st.none() | st.sampled_from(sorted({str(r[column]) for r in rows})))

    row = draw(st.sampled_from(rows))
    actor = draw(st.none() | st.just(row["actor_display"][1:5]) | st.just("nobody-zq"))
    q = draw(st.none() | st.sampled_from([row["action"].lower()[:6], row["target_kind"], "nowhere-zq",
                                          f"actor:{row['actor_display'][:4]}", f"{row['category']} -failed"]))
    since = draw(st.none() | st.integers(0, DAYS).map(lambda d: START + timedelta(days=d)))
    until = draw(st.none() | st.integers(0, DAYS + 1).map(lambda d: START + timedelta(days=d, hours=7)))
    return EventFilters(category=one_of("category"), target_kind=one_of("target_kind"), action=one_of("action"),
                        actor=actor or None, since=since, until=until,
                        q=parse_search(q, LIMITS) if q else None)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_composition_of_filters_pages_exactly_its_rows_with_prewhere_as_without(stored, data):
    settings_, rows = stored
    filters = data.draw(filter_sets(rows), label="filters")
    limit = data.draw(st.integers(1, 23), label="limit")
    client = get_client(settings_.clickhouse.dsn)
    expected = [str(r["id"]) for r in rows if _matches(r, filters)]

    with_prewhere = reader_pages(EventReader(client, settings_.events_table), WS, filters, limit)
    plain = reader_pages(PlainWhereReader(client, settings_.events_table), WS, filters, limit)

    assert with_prewhere == expected
    assert plain == expected


def test_text_conditions_are_kept_apart_from_the_key_conditions():
    query = build_where(WS, EventFilters(category="members", actor="alex", since=START,
                                         q=parse_search("role -removed", LIMITS)))
    assert "LIKE" not in query.key_where and "lower" not in query.key_where
    assert "category = {category:String}" in query.key_where and "occurred_at >=" in query.key_where
    assert "actor_display" in query.text_where and query.text_where.count("LIKE") >= 3
    assert query.where == f"{query.key_where} AND {query.text_where}"
    plain = build_where(WS, EventFilters(category="members"))
    assert plain.text_where == "" and plain.where == plain.key_where
