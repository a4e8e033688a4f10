"""Actor days (migration 0008, clickhouse/pending/): an actor search reads only the days its actor appears
on, and every page is the same with and without it, through the pool or one client.

The migration waits in clickhouse/pending/ until 0007 lands (the loader refuses gaps); these tests
apply it the way ``auditlog migrate`` applies a migration.
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clickhouse.client import get_client, open_client
from clickhouse.migrations import Migration
from clickhouse.pool import ClientPool
from config.settings import Settings
from producers.synthetic import EventGenerator
from query_api.cursor import Position
from query_api.filters import EventFilters
from query_api.queries import ACTOR_DAYS, EventReader
from schemas.event import Actor
from tests.support.pipeline import store_directly

pytestmark = pytest.mark.clickhouse

PENDING = Path(__file__).resolve().parents[2] / "clickhouse/pending/0008_add_actor_days_projection.sql"
WS = "ws_days"
NOW = datetime.now(UTC).replace(microsecond=0)
RARE = Actor("user", "u_mallory", "Mallory.Contractor@external.example")


def apply_actor_days(s: Settings) -> None:
    client = get_client(s.clickhouse.dsn)
    migration = Migration(8, "add_actor_days_projection", PENDING.read_text())
    for statement in migration.statements(s.clickhouse.database, s.clickhouse.table):
        client.command(statement, settings={"mutations_sync": 2})


@pytest.fixture
def stored(clickhouse_settings: Settings) -> tuple[Settings, list[Any]]:
    """400 events over 300 days, a rare actor on a dozen scattered days, and some rows stored twice
    (copies not merged yet, which pages collapse)."""
    generator = EventGenerator(seed=19)
    events = list(generator.history([WS, "ws_other"], 800, NOW - timedelta(days=300), NOW))
    events = [replace(e, actor=RARE) if i % 67 == 5 else e for i, e in enumerate(events)]
    store_directly(clickhouse_settings, events)
    apply_actor_days(clickhouse_settings)
    store_directly(clickhouse_settings, events[::9], token="copies")  # a second part, after the migration
    return clickhouse_settings, [e for e in events if e.workspace_id == WS]


def _walk(reader: EventReader, filters: EventFilters, limit: int) -> list[str]:
    ids: list[str] = []
    after: Position | None = None
    while True:
        page, more = reader.page(WS, filters, limit, after)
        ids += [e["id"] for e in page]
        if not more:
            return ids
        after = Position(page[-1]["occurred_at"], uuid.UUID(page[-1]["id"]))


def _newest_first(events: list[Any]) -> list[str]:
    return [str(e.id) for e in sorted(events, key=lambda e: (e.occurred_at, e.id), reverse=True)]


def test_the_days_question_is_answered_from_the_projection(stored):
    s, _ = stored
    client = get_client(s.clickhouse.dsn)
    plan = "\n".join(r[0] for r in client.query(
        f"EXPLAIN SELECT toDate(occurred_at) AS day FROM {s.events_table} WHERE workspace_id = 'ws_days'"
        " AND lower(actor_display) LIKE '%mallory%' GROUP BY day",
        settings={"force_optimize_projection": 1}).result_rows)
    assert ACTOR_DAYS in plan, plan


def test_a_rare_actor_page_reads_only_its_days(stored):
    s, events = stored
    client = get_client(s.clickhouse.dsn)
    reader = EventReader(client, s.events_table, actor_days=True)
    rare = [e for e in events if e.actor == RARE]
    assert _walk(reader, EventFilters(actor="mallory"), 50) == _newest_first(rare)
    days = {e.occurred_at.date() for e in rare}
    # The page's own query, as the engine reads it: only granules of those days qualify.
    assert sorted(reader._days_seen(client, WS, "MALLORY")) == sorted(days)
    assert _walk(reader, EventFilters(actor="nobody-like-this"), 50) == []


actors = st.sampled_from(["mallory", "MALLORY.c", "@", "a", "ex", "%", "_", "\\", "zz-none", "corp", "o"])


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(actor=actors, limit=st.integers(1, 60), since_days=st.none() | st.integers(0, 320),
       span_days=st.none() | st.integers(0, 200), category=st.none() | st.sampled_from(["members", "tokens"]))
def test_pages_are_the_same_with_and_without_actor_days_through_the_pool_or_one_client(
        stored, actor, limit, since_days, span_days, category):
    s, _ = stored
    since = NOW - timedelta(days=since_days) if since_days is not None else None
    until = since + timedelta(days=span_days) if since is not None and span_days is not None else None
    filters = EventFilters(actor=actor, since=since, until=until, category=category)
    one = get_client(s.clickhouse.dsn)
    pool = ClientPool(lambda: open_client(s.clickhouse.dsn), 2, 10.0, "pages")
    plain = _walk(EventReader(one, s.events_table), filters, limit)
    assert _walk(EventReader(one, s.events_table, actor_days=True), filters, limit) == plain
    assert _walk(EventReader(pool, s.events_table, max_threads=1, actor_days=True), filters, limit) == plain
    assert len(plain) == len(set(plain))
    pool.close()
