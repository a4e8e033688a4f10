"""Migration 0009 remakes the daily summary by action with 2,048-row granules: a database upgraded
from 0008 answers the data team's questions as before, without anyone refreshing it by hand."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from clickhouse.client import get_client
from clickhouse.events import insert_rows, record_to_row
from clickhouse.migrations import load_migrations, migrate
from clickhouse.summaries import refresh_summaries
from producers.synthetic import EventGenerator
from tests.integration.test_data_team_sql import EXAMPLES

pytestmark = pytest.mark.clickhouse

QUESTIONS = ("tokens_minted_per_actor", "role_changes_per_week_all_workspaces")


def _apply_up_to(client, database: str, table: str, last: int) -> None:
    """What ``migrate`` did when ``last`` was the newest migration."""
    client.command(f"CREATE DATABASE IF NOT EXISTS {database}")
    client.command(f"CREATE TABLE IF NOT EXISTS {database}.schema_migrations (version UInt32, name String, "
                   "checksum String, applied_at DateTime DEFAULT now()) ENGINE = ReplacingMergeTree ORDER BY version")
    for m in load_migrations():
        if m.version > last:
            break
        for statement in m.statements(database, table):
            client.command(statement)
        client.insert(f"{database}.schema_migrations", [[m.version, m.name, m.checksum]],
                      column_names=["version", "name", "checksum"])


def _answers(client, database: str, table: str) -> dict[str, list[tuple]]:
    from_day = (datetime.now(UTC) - timedelta(days=400)).date()
    return {name: [tuple(r) for r in client.query(
        (EXAMPLES / f"{name}.sql").read_text().replace("audit.events", f"{database}.{table}"),
        parameters={"from_day": from_day}).result_rows] for name in QUESTIONS}


def test_an_upgraded_database_refreshes_the_remade_summary_and_answers_the_same(clickhouse_dsn):
    client = get_client(clickhouse_dsn)
    database, table = f"audit_m9_{uuid.uuid4().hex[:8]}", "events"
    _apply_up_to(client, database, table, 8)
    generator = EventGenerator(seed=9)
    now = datetime.now(UTC)
    events = list(generator.history(["ws_a", "ws_b"], 4000, now - timedelta(days=300), now))
    events += [generator.event("ws_a", now - timedelta(days=d), action="API_TOKEN_CREATED") for d in range(1, 60)]
    insert_rows(client, f"{database}.{table}", [record_to_row(e.to_record(), 1) for e in events], "m9")
    refresh_summaries(client, database, table)
    before = _answers(client, database, table)
    assert before["tokens_minted_per_actor"] and before["role_changes_per_week_all_workspaces"]
    try:
        assert migrate(client, database, table)[0] == "0009_resize_daily_actions_granules"  # and what came after
        # The view refreshes once when it is made: wait for that refresh, never trigger one.
        client.command(f"SYSTEM WAIT VIEW {database}.{table}_daily_actions_refresh")
        assert _answers(client, database, table) == before
        create = client.query(f"SHOW CREATE TABLE {database}.{table}_daily_actions").result_rows[0][0]
        assert "index_granularity = 2048" in create
        refresh_summaries(client, database, table)  # the hourly refresh still works on the new table
        assert _answers(client, database, table) == before
        assert migrate(client, database, table) == []
    finally:
        client.command(f"DROP DATABASE IF EXISTS {database} SYNC")
