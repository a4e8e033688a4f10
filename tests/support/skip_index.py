"""Skip-index tests: many generated rows in one workspace, and how many granules an index lets a page read."""

from __future__ import annotations

import re

from clickhouse_connect.driver.client import Client

from clickhouse.events import SELECT_COLUMNS
from query_api.queries import Query

# Every stored column as an SQL expression of ``number`` (numbers(N)): one second apart from 2026-01-01,
# 40 actors; a test overrides the columns its index covers.
GENERATED_ROW = {
    "id": "generateUUIDv4()", "workspace_id": "'ws_big'",
    "occurred_at": "toDateTime64('2026-01-01 00:00:00', 6, 'UTC') + toIntervalSecond(number)",
    "action": "'MEMBER_ROLE_CHANGED'", "category": "'members'", "actor_kind": "'user'",
    "actor_id": "toString(number % 40)", "actor_display": "concat('user', toString(number % 40))",
    "target_kind": "'user'", "target_id": "'u'", "target_display": "'u'",
    "payload": "'{\"before\":null,\"after\":null}'", "schema_version": "1",
}


def insert_generated(client: Client, table: str, count: int, **columns: str) -> None:
    """``count`` rows of ``GENERATED_ROW`` with ``columns`` overridden, in one part after OPTIMIZE."""
    row = {**GENERATED_ROW, **columns}
    client.command(f"INSERT INTO {table} ({', '.join(row)}) SELECT {', '.join(row.values())} FROM numbers({count})")
    client.command(f"OPTIMIZE TABLE {table} FINAL")


def granules_kept(client: Client, table: str, query: Query, index: str) -> tuple[int, int]:
    """(granules the index ``index`` keeps, granules it was asked about) for a page read with ``query``."""
    plan = "\n".join(str(r[0]) for r in client.query(
        f"EXPLAIN indexes = 1 SELECT {SELECT_COLUMNS} FROM {table} WHERE {query.where}"
        " ORDER BY occurred_at DESC, id DESC LIMIT 51", parameters=query.parameters).result_rows)
    found = re.search(r"Granules: (\d+)/(\d+)", plan[plan.index(index):])
    assert found, plan
    kept, total = map(int, found.groups())
    return kept, total
