"""The cluster DDL, the access SQL and the retention TTL, checked by the real engine.

No cluster runs here (no Keeper, no remote_servers), so the ON CLUSTER and
Replicated statements are parsed by the engine (``formatQuery``), and the
local table's definition, made non-replicated, is created next to the
single-server table to prove the two have the same columns and keys.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from clickhouse.client import get_client
from clickhouse.errors import MigrationError
from clickhouse.events import insert_rows, record_to_row
from clickhouse.migrations import apply_retention, current_retention_days, load_migrations, migrate
from config.settings import Settings
from producers.synthetic import EventGenerator

pytestmark = pytest.mark.clickhouse
ROOT = Path(__file__).resolve().parents[2]


def _format(client, sql: str) -> str:
    return str(client.query("SELECT formatQuery({q:String})", parameters={"q": sql}).result_rows[0][0])


def test_every_cluster_migration_statement_parses(clickhouse_settings: Settings):
    client = get_client(clickhouse_settings.clickhouse.dsn)
    statements = [s for m in load_migrations(cluster=True) for s in m.statements("audit", "events", "audit_cluster")]
    formatted = [_format(client, s) for s in statements]
    # 0001: database, local table, Distributed table; 0002: one setting; 0003: the codecs;
    # 0004: drop the old actor index, add the new one, build it; 0005: the id table, its Distributed
    # table, the view that fills it, the backfill; 0006: three local + three Distributed tables, the
    # ingested_at index; create_daily_summaries: two local summary tables, their Distributed tables, two views;
    # 0008: the search index, built; 0009: drop the by-action view and local table, make both again;
    # 0010: drop leftovers (3), the new local and Distributed tables, the forwarding view, the copy,
    # the catch-up, the check, the swap, drop the view and both old tables.
    assert len(formatted) == 3 + 1 + 1 + 3 + 4 + 8 + 6 + 2 + 4 + 13
    regranulated = formatted[-13:]
    assert "index_granularity = 2048" in regranulated[3] and "events_local_g2048" in regranulated[3]
    assert "EXCHANGE TABLES audit.events_local AND audit.events_regranulated_local ON CLUSTER audit_cluster" \
        in regranulated[9]
    assert all("distributed_foreground_insert = 1" in s for s in regranulated[6:8])
    remade = formatted[-15:-13]
    assert "index_granularity = 2048" in remade[0] and "ON CLUSTER audit_cluster" in remade[0]
    assert "TO audit.events_daily_actions_local" in remade[1]
    assert "ENGINE = Distributed('audit_cluster', 'audit', 'events_local', sipHash64(workspace_id))" in formatted[2]


def test_a_statement_the_engine_cannot_parse_is_refused(clickhouse_settings: Settings):
    client = get_client(clickhouse_settings.clickhouse.dsn)
    with pytest.raises(Exception, match="Syntax error"):
        _format(client, "CREATE TABLE a.b ON CLUSTER c AS a.b_local ENGINE = Distributed(c, a, b_local")


def test_cluster_local_table_has_the_single_server_columns_keys_and_indexes(clickhouse_settings: Settings):
    client = get_client(clickhouse_settings.clickhouse.dsn)
    db = clickhouse_settings.clickhouse.database
    # Every statement of the cluster set on the storage table, made single-server, in order.
    for migration in load_migrations(cluster=True):
        for local in migration.statements(db, "events", "c1"):
            if f"{db}.events_local" not in local or "ENGINE = Distributed" in local or "events_ids" in local \
                    or "events_daily_" in local:
                continue
            local = re.sub(r" ON CLUSTER '[^']*'", "", local)
            local = re.sub(r"ReplicatedReplacingMergeTree\([^)]*\)", "ReplacingMergeTree", local)
            client.command(local)

    def shape(table: str) -> tuple[Sequence[Sequence[Any]], ...]:
        columns = client.query(
            "SELECT name, type, default_kind, default_expression, compression_codec FROM system.columns "
            "WHERE database = {db:String} AND table = {t:String} ORDER BY position",
            parameters={"db": db, "t": table},
        ).result_rows
        keys = client.query(
            "SELECT sorting_key, primary_key, partition_key FROM system.tables "
            "WHERE database = {db:String} AND name = {t:String}",
            parameters={"db": db, "t": table},
        ).result_rows
        indexes = client.query(
            "SELECT name, type_full, expr, granularity FROM system.data_skipping_indices "
            "WHERE database = {db:String} AND table = {t:String} ORDER BY name",
            parameters={"db": db, "t": table},
        ).result_rows
        return columns, keys, indexes

    single, cluster = shape("events"), shape("events_local")
    assert single[1] == [("workspace_id, occurred_at, id", "workspace_id, occurred_at, id", "toYYYYMM(occurred_at)")]
    assert {c[0]: c[4] for c in single[0]}["occurred_at"] == "CODEC(T64, LZ4)"  # 0003 applied to both
    assert cluster == single


@pytest.mark.parametrize("on_cluster", ["", "ON CLUSTER 'audit_cluster'"])
def test_read_only_role_definition_parses(clickhouse_settings: Settings, on_cluster: str):
    client = get_client(clickhouse_settings.clickhouse.dsn)
    text = (ROOT / "clickhouse/access/readonly_role.sql").read_text()
    text = text.replace("{database}", "audit").replace("{on_cluster}", on_cluster)
    text = text.replace("{analyst_password_sha256}", "0" * 64)
    body = "\n".join(ln for ln in text.splitlines() if not ln.strip().startswith("--"))
    statements = [s.strip() for s in body.split(";") if s.strip()]
    formatted = [_format(client, s) for s in statements]
    assert [f.split(" ")[0:2] for f in formatted] == [
        ["CREATE", "ROLE"], ["GRANT", *(["ON"] if on_cluster else ["SELECT"])], ["CREATE", "SETTINGS"],
        ["CREATE", "QUOTA"], ["CREATE", "USER"],
    ]
    assert any("GRANT" in f and "SELECT ON audit.* TO auditlog_reader" in f for f in formatted)


def test_readonly_profile_setting_refuses_writes_and_allows_reads(clickhouse_settings: Settings):
    # chDB has no access management, so the role itself cannot be created here; the
    # profile's `readonly = 2` is what stops writes even if a grant were too wide.
    # (A SETTINGS clause, not client settings: in chDB those would stick to the shared session.)
    client = get_client(clickhouse_settings.clickhouse.dsn)
    table = clickhouse_settings.events_table
    assert client.query(f"SELECT count() FROM {table} SETTINGS readonly = 2").result_rows == [(0,)]
    with pytest.raises(Exception, match="readonly mode"):
        client.command(f"TRUNCATE TABLE {table} SETTINGS readonly = 2")
    with pytest.raises(Exception, match="readonly mode"):
        client.command(f"ALTER TABLE {table} DELETE WHERE 1 SETTINGS readonly = 2")


def _rows_days_ago(days: list[int]) -> list[tuple[object, ...]]:
    generator = EventGenerator(seed=3)
    now = datetime.now(UTC)
    return [record_to_row(generator.event("ws_ret", now - timedelta(days=d)).to_record(), 1) for d in days]


def test_retention_setting_drops_expired_months_and_migrate_follows_later_changes(clickhouse_settings: Settings):
    client = get_client(clickhouse_settings.clickhouse.dsn)
    db, table = clickhouse_settings.clickhouse.database, clickhouse_settings.clickhouse.table
    insert_rows(client, f"{db}.{table}", _rows_days_ago([500, 480, 3, 1]), "retention-1")
    assert current_retention_days(client, db, table) == 0

    assert migrate(client, db, table, retention_days=365) == []  # no new file, only the TTL
    assert current_retention_days(client, db, table) == 365
    assert current_retention_days(client, db, f"{table}_ids") == 365  # ids are kept as long as their events
    kept = client.query(f"SELECT count(), min(occurred_at) FROM {db}.{table}").result_rows[0]
    assert kept[0] == 2
    assert kept[1] > datetime.now() - timedelta(days=30)
    client.command(f"OPTIMIZE TABLE {db}.{table}_ids FINAL")
    assert client.query(f"SELECT count() FROM {db}.{table}_ids").result_rows[0][0] == 2

    assert apply_retention(client, db, table, 365) is False  # already matches: no ALTER
    assert apply_retention(client, db, table, 0) is True
    assert current_retention_days(client, db, table) == 0
    migrate(client, db, table)  # no retention given: the TTL is left alone
    assert current_retention_days(client, db, table) == 0


def test_a_ttl_set_by_hand_is_reported_not_overwritten(clickhouse_settings: Settings):
    client = get_client(clickhouse_settings.clickhouse.dsn)
    db, table = clickhouse_settings.clickhouse.database, clickhouse_settings.clickhouse.table
    client.command(f"ALTER TABLE {db}.{table} MODIFY TTL toDateTime(ingested_at) + toIntervalMonth(6)")
    with pytest.raises(MigrationError, match="did not set"):
        apply_retention(client, db, table, 30)
