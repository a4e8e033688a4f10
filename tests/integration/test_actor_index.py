"""The actor substring search is served by the ngram skip index: a rare actor reads only its granules."""

from __future__ import annotations

import re

import pytest

from clickhouse.client import get_client
from clickhouse.events import SELECT_COLUMNS
from query_api.filters import EventFilters
from query_api.queries import build_where

pytestmark = pytest.mark.clickhouse


def test_a_rare_actor_search_skips_the_granules_without_that_actor(clickhouse_settings):
    client = get_client(clickhouse_settings.clickhouse.dsn)
    table = clickhouse_settings.events_table
    client.command(
        f"INSERT INTO {table} (id, workspace_id, occurred_at, action, category, actor_kind, actor_id, actor_display,"
        " target_kind, target_id, target_display, payload, schema_version)"
        " SELECT generateUUIDv4(), 'ws_big', toDateTime64('2026-01-01 00:00:00', 6, 'UTC') + toIntervalSecond(number),"
        " 'MEMBER_ROLE_CHANGED', 'members', 'user', toString(number % 40),"
        " if(number % 50000 = 7, 'mallory.contractor@external.example', concat(['alex', 'sam', 'priya', 'jonas',"
        " 'mei', 'omar', 'lucia', 'noah'][number % 8 + 1], toString(number % 40), '@corp.example.com')),"
        " 'user', 'u', 'u', '{\"before\":null,\"after\":null}', 1 FROM numbers(400000)"
    )
    client.command(f"OPTIMIZE TABLE {table} FINAL")
    query = build_where("ws_big", EventFilters(actor="mallory"))
    plan = client.query(
        f"EXPLAIN indexes = 1 SELECT {SELECT_COLUMNS} FROM {table} WHERE {query.where}"
        " ORDER BY occurred_at DESC, id DESC LIMIT 51",
        parameters=query.parameters,
    ).result_rows
    text = "\n".join(str(r[0]) for r in plan)
    skip = text[text.index("idx_actor_ngrams"):]
    granules = re.search(r"Granules: (\d+)/(\d+)", skip)
    assert granules, skip
    kept, total = map(int, granules.groups())
    matches = client.query(
        f"SELECT count() FROM {table} WHERE actor_display LIKE 'mallory%'").result_rows[0][0]
    assert matches == 8
    assert total >= 40 and kept <= matches, f"the index kept {kept} of {total} granules for {matches} matches"
