"""Pages remember how densely a search matched: the next page of a rare search skips the newest-days
query, and with or without the hint every page shows the same rows."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from clickhouse.client import get_client
from producers.synthetic import EventGenerator
from query_api.cursor import Position
from query_api.filters import EventFilters
from query_api.queries import EventReader
from schemas.event import Actor
from tests.support.pipeline import store_directly

pytestmark = pytest.mark.clickhouse

WS = "ws_density"


class CountingClient:
    """Passes every query to the real engine and counts them."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.queries = 0

    def query(self, *args: Any, **kwargs: Any) -> Any:
        self.queries += 1
        return self._client.query(*args, **kwargs)


@pytest.fixture
def stored(clickhouse_settings):
    now = datetime.now(UTC)
    generator = EventGenerator(seed=41)
    busy = list(generator.history([WS], 300, now - timedelta(days=1), now))
    older = list(generator.history([WS], 300, now - timedelta(days=300), now - timedelta(days=3)))
    rare_actor = Actor("user", "u_mallory", "mallory@example.com")
    rare = [replace(e, actor=rare_actor) for e in older[::20]]  # 15 events, none in the newest days
    everything = busy + [e for e in older if e not in older[::20]] + rare
    store_directly(clickhouse_settings, everything)
    return clickhouse_settings, everything, rare


def _ids(events):
    return [str(e.id) for e in sorted(events, key=lambda e: (e.occurred_at, e.id), reverse=True)]


def test_a_repeated_rare_search_reads_the_whole_history_in_one_query(stored):
    settings, _everything, rare = stored
    client = CountingClient(get_client(settings.clickhouse.dsn))
    reader = EventReader(client, settings.events_table)  # type: ignore[arg-type]
    filters = EventFilters(actor="mallory")

    first, _ = reader.page(WS, filters, 10, None)
    queries_first = client.queries
    again, _ = reader.page(WS, filters, 10, None)

    assert queries_first == 2  # the newest two days (nothing), then the rest
    assert client.queries - queries_first == 1  # the memo says rare: the rest at once
    assert [e["id"] for e in first] == [e["id"] for e in again] == _ids(rare)[:10]


@pytest.mark.parametrize("filters", [EventFilters(), EventFilters(actor="mallory"), EventFilters(category="members")])
def test_pages_with_and_without_remembered_densities_show_the_same_rows(stored, filters):
    settings, everything, rare = stored
    client = get_client(settings.clickhouse.dsn)
    hinted = EventReader(client, settings.events_table)
    walks = []
    for reader, forget in ((EventReader(client, settings.events_table), True), (hinted, False), (hinted, False)):
        ids, after = [], None
        while True:
            if forget:
                reader.densities.clear()
            page, more = reader.page(WS, filters, 7, after)
            ids += [e["id"] for e in page]
            if not more:
                break
            after = Position(page[-1]["occurred_at"], uuid.UUID(page[-1]["id"]))
        walks.append(ids)
    assert walks[0] == walks[1] == walks[2]
    assert len(walks[0]) == len(set(walks[0])) > 0
    if filters.is_empty:
        assert walks[0] == _ids(everything)
    if filters.actor:
        assert walks[0] == _ids(rare)
