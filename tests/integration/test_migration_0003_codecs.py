"""Migration 0003 (column codecs) upgrades a table that already holds rows, once, without changing what reads see.

A deployment made before 0003 has a table full of LZ4 parts and not-yet-merged
copies. ``auditlog migrate`` must apply 0003 to it exactly once, keep every
column's type and default (a codec-only ``MODIFY COLUMN``), and the rows must
read back the same before and after the parts are rewritten with the new
codecs, copies still collapsing to one event each.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from clickhouse import migrations
from clickhouse.client import get_client
from clickhouse.events import insert_rows, record_to_row
from config.settings import Settings
from producers.synthetic import EventGenerator

pytestmark = pytest.mark.clickhouse

WS = "ws_codecs"
NEW_CODECS = {
    "id": "", "occurred_at": "CODEC(T64, LZ4)", "actor_id": "CODEC(ZSTD(1))",
    "actor_display": "", "target_id": "CODEC(ZSTD(1))", "target_display": "CODEC(ZSTD(1))",
    "ip": "CODEC(ZSTD(1))", "user_agent": "CODEC(ZSTD(1))", "request_id": "CODEC(ZSTD(1))",
}


@pytest.fixture
def table_before_0003(clickhouse_dsn: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    """A database migrated only to 0002, as a deployment made before 0003 has it."""
    s = Settings.model_validate({"clickhouse": {"dsn": clickhouse_dsn, "database": f"audit_t{uuid.uuid4().hex[:10]}",
                                                "table": "events"}})
    client = get_client(clickhouse_dsn)
    shipped = migrations.load_migrations
    with monkeypatch.context() as m:
        m.setattr(migrations, "load_migrations", lambda cluster=False: shipped(cluster)[:2])
        assert migrations.migrate(client, s.clickhouse.database, s.clickhouse.table) == [
            "0001_create_events", "0002_set_retention_ttl"]
    try:
        yield s
    finally:
        client.command(f"DROP DATABASE IF EXISTS {s.clickhouse.database}")


def _columns(settings: Settings) -> dict[str, tuple[str, str, str]]:
    rows = get_client(settings.clickhouse.dsn).query(
        "SELECT name, type, default_expression, compression_codec FROM system.columns"
        " WHERE database = {db:String} AND table = {t:String}",
        parameters={"db": settings.clickhouse.database, "t": settings.clickhouse.table},
    ).result_rows
    return {str(r[0]): (str(r[1]), str(r[2]), str(r[3])) for r in rows}


def _events_as_read(settings: Settings) -> list[tuple[object, ...]]:
    """Every event once, newest first, the way the data-team examples collapse copies."""
    return [tuple(r) for r in get_client(settings.clickhouse.dsn).query(
        f"SELECT id, occurred_at, action, actor_id, actor_display, target_id, target_display, payload, ip,"
        f" user_agent, request_id FROM {settings.events_table} WHERE workspace_id = {{ws:String}}"
        " ORDER BY occurred_at DESC, id DESC LIMIT 1 BY occurred_at, id",
        parameters={"ws": WS},
    ).result_rows]


def test_migrate_applies_the_codecs_once_to_a_table_with_rows_and_reads_do_not_change(table_before_0003: Settings):
    settings = table_before_0003
    client = get_client(settings.clickhouse.dsn)
    start = datetime.now(UTC) - timedelta(days=90)
    events = list(EventGenerator(seed=31).history([WS], 800, start, start + timedelta(days=80)))
    rows = [record_to_row(e.to_record(), 1) for e in events]
    insert_rows(client, settings.events_table, rows, "before-0003-a")
    insert_rows(client, settings.events_table, rows, "before-0003-b")  # copies, as after a crash
    before_columns = _columns(settings)
    before_rows = _events_as_read(settings)
    assert len(before_rows) == len(events)

    applied = migrations.migrate(client, settings.clickhouse.database, settings.clickhouse.table)
    assert applied[0] == "0003_set_column_codecs"  # and any later ones
    assert migrations.migrate(client, settings.clickhouse.database, settings.clickhouse.table) == []

    after_columns = _columns(settings)
    assert {name: codec for name, (_, _, codec) in after_columns.items() if name in NEW_CODECS} == NEW_CODECS
    # Types and defaults untouched: a codec-only MODIFY COLUMN (user_agent keeps its DEFAULT '').
    assert {n: c[:2] for n, c in after_columns.items()} == {n: c[:2] for n, c in before_columns.items()}
    assert _events_as_read(settings) == before_rows

    # The parts rewritten with the new codecs (and the copies merged away) read back the same.
    client.command(f"OPTIMIZE TABLE {settings.events_table} FINAL")
    assert client.query(f"SELECT count() FROM {settings.events_table}").result_rows[0][0] == len(events)
    assert _events_as_read(settings) == before_rows
