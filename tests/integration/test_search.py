"""Free-text search ``q`` on the real engine, held to the grammar's Python meaning (query_api/search.py).

Property-based: searches are drawn from the stored rows themselves (pieces of
their fields, qualified or not, phrases, exclusions, words found nowhere) and
every answer is compared with ``Search.matches`` applied to every row of the
workspace as stored: the listing, followed page by page with small pages and
the cursor alone, must return exactly the matching rows, newest first, once
each; composed with a filter, exactly the rows both select.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clickhouse.client import get_client
from clickhouse.events import SELECT_COLUMNS
from producers.synthetic import EventGenerator
from query_api.filters import EventFilters
from query_api.queries import build_where
from query_api.search import QUALIFIER_FIELDS, SEARCH_FIELDS, SearchLimits, parse_search
from tests.support.pipeline import all_pages, api_client, bearer, store_directly
from tests.support.skip_index import granules_kept, insert_generated

pytestmark = pytest.mark.clickhouse

WS = "ws_search"
URL = f"/v1/workspaces/{WS}/audit/events"
START = datetime(2026, 1, 1, tzinfo=UTC)
COLUMNS = [c.strip() for c in SELECT_COLUMNS.split(",")]
LIMITS = SearchLimits(max_chars=256, max_terms=8)


@pytest.fixture
def stored(clickhouse_settings) -> tuple[Any, Any, list[dict[str, Any]]]:
    """600 synthetic events in two workspaces, and this workspace's rows as stored (column -> value), newest first."""
    events = list(EventGenerator(seed=18).history([WS, "ws_other"], 600, START, START + timedelta(days=40)))
    store_directly(clickhouse_settings, events)
    client = get_client(clickhouse_settings.clickhouse.dsn)
    rows = client.query(
        f"SELECT {SELECT_COLUMNS} FROM {clickhouse_settings.events_table} WHERE workspace_id = {{ws:String}}"
        " ORDER BY occurred_at DESC, id DESC", parameters={"ws": WS}).result_rows
    reference = [{c: (str(v) if c != "occurred_at" else v) for c, v in zip(COLUMNS, row, strict=True)}
                 for row in rows]
    return clickhouse_settings, api_client(clickhouse_settings), reference


def _piece(draw: st.DrawFn, rows: list[dict[str, Any]], fields: tuple[str, ...]) -> str:
    """A piece of a stored value: what a user copies from a row (no quote, no line break, not blank)."""
    row = draw(st.sampled_from(rows))
    value = str(row[draw(st.sampled_from(fields))])
    if not value:
        return "nowhere-zq"
    start = draw(st.integers(0, max(len(value) - 1, 0)))
    piece = value[start:start + draw(st.integers(2, 10))]
    piece = re.sub(r"[\"\x00-\x1f\x7f\x85\u2028\u2029]", "", piece).strip()
    return piece or "nowhere-zq"


@st.composite
def searches(draw: st.DrawFn, rows: list[dict[str, Any]]) -> str:
    """A q in the grammar: 1-4 items, each a free or qualified piece of a stored value, maybe excluded."""
    items = []
    for n in range(draw(st.integers(1, 4))):
        qualifier = draw(st.sampled_from([None, None, *QUALIFIER_FIELDS]))
        fields = QUALIFIER_FIELDS[qualifier] if qualifier else SEARCH_FIELDS
        piece = "nowhere-zq" if draw(st.integers(0, 5)) == 0 else _piece(draw, rows, fields)
        quoted = f'"{piece}"' if (" " in piece or ":" in piece or piece.startswith("-")) else piece
        exclude = n > 0 and draw(st.booleans())
        items.append(f"{'-' if exclude else ''}{qualifier + ':' if qualifier else ''}{quoted}")
    return " ".join(items)


def _expected(rows: list[dict[str, Any]], q: str, category: str | None = None) -> list[str]:
    search = parse_search(q, LIMITS)
    assert search is not None
    return [r["id"] for r in rows if search.matches(r) and (category is None or r["category"] == category)]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_paging_through_a_search_returns_exactly_the_matching_rows_newest_first_once(stored, data):
    s, client, rows = stored
    q = data.draw(searches(rows), label="q")
    found = all_pages(client, URL, bearer(s, WS), {"q": q, "limit": 7})
    assert [e["id"] for e in found] == _expected(rows, q)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_a_search_composed_with_a_filter_is_their_intersection(stored, data):
    s, client, rows = stored
    q = data.draw(searches(rows), label="q")
    category = data.draw(st.sampled_from(sorted({r["category"] for r in rows})), label="category")
    found = all_pages(client, URL, bearer(s, WS), {"q": q, "category": category, "limit": 20})
    assert [e["id"] for e in found] == _expected(rows, q, category)


def test_qualifiers_phrases_and_exclusions_on_known_rows(stored):
    s, client, rows = stored
    headers = bearer(s, WS)
    row = rows[len(rows) // 2]
    one = client.get(URL, headers=headers, params={"q": f"request:{row['request_id'].upper()}"}).json()["data"]
    assert [e["id"] for e in one] == [row["id"]]  # case-insensitive, the one event with that request id
    actor = row["actor_display"]
    by_actor = all_pages(client, URL, headers, {"q": f'actor:"{actor}"', "limit": 200})
    assert by_actor and all(actor.lower() in (e["actor"]["display"] + e["actor"]["id"]).lower() for e in by_actor)
    without = all_pages(client, URL, headers, {"q": f'-actor:"{actor}" {row["action"]}', "limit": 200})
    assert all(actor.lower() not in e["actor"]["display"].lower() for e in without)
    assert all(e["action"] == row["action"] or row["action"].lower() in orjson.dumps(e).decode().lower()
               for e in without)


def test_a_cursor_minted_for_one_search_is_refused_for_another(stored):
    s, client, _ = stored
    headers = bearer(s, WS)
    first = client.get(URL, headers=headers, params={"q": "member", "limit": 3}).json()
    assert first["next_cursor"], "the fixture has more than 3 rows mentioning member"
    other = client.get(URL, headers=headers, params={"cursor": first["next_cursor"], "q": "token"})
    assert other.status_code == 400
    assert other.json()["field"] == "cursor"
    same = client.get(URL, headers=headers, params={"cursor": first["next_cursor"], "q": "  MEMBER "})
    assert same.status_code == 200  # the same question written differently
    dropped = client.get(URL, headers=headers, params={"cursor": first["next_cursor"], "category": "members"})
    assert dropped.status_code == 400
    assert first["filters"] == {"q": "member"}


@pytest.mark.parametrize(
    ("q", "fragment"),
    [
        ('"role changed', "never closed"),
        ("actor:", "'actor:' has no value"),
        ("owner:alex", "unknown qualifier 'owner:'"),
        ("-bot", "only exclusions"),
        ("x" * 257, "at most 256"),
        ("a b c d e f g h i", "more than 8 terms"),
        ('""', "is empty"),
    ],
)
def test_bad_search_syntax_is_a_400_naming_q_on_the_list_the_export_and_the_export_link(stored, q, fragment):
    s, client, _ = stored
    headers = bearer(s, WS)
    for response in (client.get(URL, headers=headers, params={"q": q}),
                     client.get(f"/v1/workspaces/{WS}/audit/export", headers=headers, params={"q": q}),
                     client.post(f"/v1/workspaces/{WS}/audit/export-links", headers=headers, params={"q": q})):
        assert response.status_code == 400, response.text
        body = response.json()
        assert body["field"] == "q" and body["code"] == "invalid_search"
        assert fragment in body["message"] and body["message"].startswith("q: ")


def test_the_export_and_its_download_link_hold_the_same_rows_as_the_pages(stored):
    s, client, rows = stored
    headers = bearer(s, WS)
    q = "-member token"
    pages = [e["id"] for e in all_pages(client, URL, headers, {"q": q, "limit": 50})]
    assert pages == _expected(rows, q) and pages
    export = client.get(f"/v1/workspaces/{WS}/audit/export", headers=headers, params={"q": q})
    assert [orjson.loads(line)["id"] for line in export.text.splitlines()] == pages
    link = client.post(f"/v1/workspaces/{WS}/audit/export-links", headers=headers, params={"q": q}).json()
    download = client.get(link["url"])
    assert [orjson.loads(line)["id"] for line in download.text.splitlines()] == pages


def test_a_rare_term_reads_only_the_granules_the_search_index_keeps(clickhouse_settings):
    client = get_client(clickhouse_settings.clickhouse.dsn)
    table = clickhouse_settings.events_table
    insert_generated(
        client, table, 300_000, request_id="concat('req_', hex(number))",
        payload="concat('{\"before\":{\"role\":\"member\"},\"after\":{\"note\":\"',"
                " if(number % 100000 = 7, 'needle-7q', 'hay'), '\"}}')")
    query = build_where("ws_big", EventFilters(q=parse_search("NEEDLE-7q", LIMITS)))
    kept, total = granules_kept(client, table, query, "idx_search")
    matches = client.query(f"SELECT count() FROM {table} WHERE {query.where}",
                           parameters=query.parameters).result_rows[0][0]
    assert matches == 3
    assert total >= 30 and kept <= matches, f"the index kept {kept} of {total} granules for {matches} matches"
