"""The actor substring search is served by the ngram skip index: a rare actor reads only its granules."""

from __future__ import annotations

import pytest

from clickhouse.client import get_client
from query_api.filters import EventFilters
from query_api.queries import build_where
from tests.support.skip_index import granules_kept, insert_generated

pytestmark = pytest.mark.clickhouse


def test_a_rare_actor_search_skips_the_granules_without_that_actor(clickhouse_settings):
    client = get_client(clickhouse_settings.clickhouse.dsn)
    table = clickhouse_settings.events_table
    insert_generated(
        client, table, 400_000,
        actor_display="if(number % 50000 = 7, 'mallory.contractor@external.example', concat(['alex', 'sam', 'priya',"
                      " 'jonas', 'mei', 'omar', 'lucia', 'noah'][number % 8 + 1], toString(number % 40),"
                      " '@corp.example.com'))")
    kept, total = granules_kept(client, table, build_where("ws_big", EventFilters(actor="mallory")),
                                "idx_actor_ngrams")
    matches = client.query(
        f"SELECT count() FROM {table} WHERE actor_display LIKE 'mallory%'").result_rows[0][0]
    assert matches == 8
    assert total >= 40 and kept <= matches, f"the index kept {kept} of {total} granules for {matches} matches"
