"""The proposed migration 0011 (clickhouse/pending/): a projection by action, same answers, duplicates still collapse.

It waits in clickhouse/pending/ (applied, it costs more storage than the target allows:
docs/performance.md); this test applies it the way ``auditlog migrate`` applies a migration, to
a table that holds events and not-yet-merged copies of them, and checks that
the engine reads the projection for a question by action, that the data team's
examples answer the same, and that a merge dropping copies keeps the projection
consistent (``deduplicate_merge_projection_mode = 'rebuild'``).
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from clickhouse.client import get_client
from clickhouse.migrations import Migration
from tests.integration.test_data_team_sql import NOW, WS, events  # noqa: F401 - the stored events fixture

pytestmark = pytest.mark.clickhouse

PENDING = Path(__file__).resolve().parents[2] / "clickhouse/pending/0011_add_action_projection.sql"
EXAMPLES = Path(__file__).resolve().parents[2] / "clickhouse/data_teams"


# On a few thousand rows the engine reads the table itself (no fewer granules); this makes it
# read the projection (or fail), so the projection's own rows are checked.
PREFER = {"force_optimize_projection": "1"}


def _answers(client: Any, table: str, stored: list[Any],
             settings: dict[str, str] | None = None) -> dict[str, list[tuple[Any, ...]]]:
    integration = next(e.target.id for e in stored if e.workspace_id == WS and e.target.kind == "integration")
    params = {"workspace": WS, "integration_id": integration, "since": NOW - timedelta(days=120),
              "from_day": (NOW - timedelta(days=120)).date()}
    out = {}
    for path in sorted(EXAMPLES.glob("*.sql")) if not settings else []:  # they filter a workspace first
        sql = path.read_text().replace("audit.events", table)
        out[path.name] = [tuple(r) for r in client.query(sql, parameters=params, settings=settings).result_rows]
    out["all role changes"] = [tuple(r) for r in client.query(
        f"SELECT toMonday(occurred_at) AS week, uniqExact(id) FROM {table} WHERE action = 'MEMBER_ROLE_CHANGED'"
        " GROUP BY week ORDER BY week", settings=settings).result_rows]
    return out


def test_the_action_projection_serves_questions_by_action_with_the_same_answers(
        clickhouse_settings, events):  # noqa: F811
    client = get_client(clickhouse_settings.clickhouse.dsn)
    table, ch = clickhouse_settings.events_table, clickhouse_settings.clickhouse
    before = _answers(client, table, events)
    for statement in Migration(7, "add_action_projection", PENDING.read_text()).statements(ch.database, ch.table):
        client.command(statement, settings={"mutations_sync": 2})
    projections = client.query(
        "SELECT name FROM system.projections WHERE database = {db:String} AND table = {t:String}",
        parameters={"db": ch.database, "t": ch.table}).result_rows
    assert projections == [("by_action",)]
    plan = "\n".join(r[0] for r in client.query(
        f"EXPLAIN indexes = 1 SELECT count() FROM {table} WHERE action = 'MEMBER_ROLE_CHANGED'",
        settings=PREFER).result_rows)
    assert "by_action" in plan, plan
    assert _answers(client, table, events) == before
    assert _answers(client, table, events, PREFER) == {"all role changes": before["all role changes"]}
    # The fixture stored every event twice; merging drops the copies and rebuilds the projection.
    client.command(f"OPTIMIZE TABLE {table} FINAL")
    rows, ids = client.query(f"SELECT count(), uniqExact(id) FROM {table} WHERE action = 'MEMBER_ROLE_CHANGED'"
                             ).result_rows[0]
    assert rows == ids == sum(1 for e in events if e.action == "MEMBER_ROLE_CHANGED")
    rows, ids = client.query(f"SELECT count(), uniqExact(id) FROM {table} WHERE action = 'MEMBER_ROLE_CHANGED'",
                             settings=PREFER).result_rows[0]
    assert rows == ids
    assert _answers(client, table, events) == before
    assert _answers(client, table, events, PREFER) == {"all role changes": before["all role changes"]}
