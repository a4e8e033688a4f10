"""The events table's row shape is written once (clickhouse/events.py) and the DDL agrees with it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from clickhouse.events import COLUMNS, EVENT_DIGEST, SEARCH_TEXT
from query_api.search import SEARCH_FIELDS

CLICKHOUSE = Path(__file__).resolve().parents[2] / "clickhouse"

# Not inserted: ingested_at has a DEFAULT (now64(3)) and the engine fills it in at insert time.
NOT_INSERTED = {"ingested_at"}


def _table_columns(sql: str, table: str) -> list[str]:
    """Column names, in order, of ``CREATE TABLE … {database}.<table> (…)`` (indexes and comments skipped)."""
    match = re.search(rf"CREATE TABLE IF NOT EXISTS \{{database\}}\.{re.escape(table)}(?=\s)[^(]*\((.*?)\n\)", sql,
                      re.S)
    assert match, f"no CREATE TABLE for {table}"
    columns = []
    for line in match.group(1).splitlines():
        line = line.strip()
        if not line or line.startswith("--") or line.startswith("INDEX "):
            continue
        columns.append(line.split()[0])
    return columns


@pytest.mark.parametrize(("path", "table"), [("0001_create_events.sql", "{table}"),
                                             ("cluster/0001_create_events.sql", "{table}_local")])
def test_the_inserted_columns_are_the_events_table_columns_in_order(path, table):
    columns = _table_columns((CLICKHOUSE / path).read_text(), table)

    assert "ingested_at" in columns  # present in the table, filled by its DEFAULT
    assert tuple(c for c in columns if c not in NOT_INSERTED) == COLUMNS


def test_the_parser_reads_every_column_line():
    sql = (CLICKHOUSE / "0001_create_events.sql").read_text()
    block = sql[sql.index("(\n") + 2:sql.index("\n)\nENGINE")]
    definitions = [ln for ln in block.splitlines() if ln.strip() and not ln.strip().startswith(("--", "INDEX"))]
    assert len(_table_columns(sql, "{table}")) == len(definitions) == len(COLUMNS) + len(NOT_INSERTED)


@pytest.mark.parametrize("path", ["0005_create_event_ids.sql", "cluster/0005_create_event_ids.sql"])
def test_the_event_digest_is_word_for_word_in_the_view_and_the_backfill(path):
    sql = (CLICKHOUSE / path).read_text()

    assert sql.count(f"SELECT id, workspace_id, occurred_at, {EVENT_DIGEST} AS digest\n") == 2
    view, backfill = sql.index("CREATE MATERIALIZED VIEW"), sql.index("INSERT INTO")
    assert view < sql.index(EVENT_DIGEST, view) < backfill < sql.index(EVENT_DIGEST, backfill)


@pytest.mark.parametrize("path", ["0008_add_search_index.sql", "cluster/0008_add_search_index.sql"])
def test_the_search_text_is_word_for_word_the_expression_of_the_search_index(path):
    sql = (CLICKHOUSE / path).read_text()

    assert f"ADD INDEX IF NOT EXISTS idx_search\n    {SEARCH_TEXT} TYPE " in sql


def test_the_search_text_joins_exactly_the_searched_fields_in_order():
    inner = SEARCH_TEXT.removeprefix("lowerUTF8(concat(").removesuffix("))")
    assert inner.split(", '\\n', ") == list(SEARCH_FIELDS)
