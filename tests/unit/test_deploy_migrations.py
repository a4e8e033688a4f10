"""The cluster migration set mirrors the single-server one; retention renders from the setting."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from clickhouse.errors import MigrationError
from clickhouse.migrations import load_migrations, retention_statement, storage_table
from config.settings import Settings


def test_cluster_set_has_the_same_numbered_migrations_as_the_single_server_set():
    single = [(m.version, m.name) for m in load_migrations()]
    cluster = [(m.version, m.name) for m in load_migrations(cluster=True)]
    assert cluster == single


def test_every_cluster_statement_runs_on_the_named_cluster():
    for migration in load_migrations(cluster=True):
        for statement in migration.statements("audit", "events", "audit_cluster"):
            # One-off backfills and checks through the Distributed tables, run once from the node migrating.
            if statement.startswith(("INSERT INTO", "WITH")):
                assert "_local" not in statement, statement
                continue
            assert "ON CLUSTER 'audit_cluster'" in statement, statement
            assert "{cluster}" not in statement and "{database}" not in statement and "{table}" not in statement


def test_cluster_storage_is_replicated_and_the_distributed_table_keeps_the_configured_name():
    statements = load_migrations(cluster=True)[0].statements("audit", "events", "c1")
    local = next(s for s in statements if "audit.events_local ON CLUSTER" in s and "CREATE TABLE" in s)
    distributed = next(s for s in statements if "ENGINE = Distributed" in s)
    assert "ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/audit/events_local', '{replica}')" in local
    assert distributed.startswith("CREATE TABLE IF NOT EXISTS audit.events ON CLUSTER 'c1'")
    assert "Distributed('c1', 'audit', 'events_local', sipHash64(workspace_id))" in distributed


def test_retention_sets_a_day_ttl_or_removes_it_on_the_storage_table():
    assert retention_statement("audit", "events", 365) == (
        "ALTER TABLE audit.events MODIFY TTL toDateTime(occurred_at) + toIntervalDay(365)"
    )
    assert retention_statement("audit", "events", 0) == "ALTER TABLE audit.events REMOVE TTL"
    assert retention_statement("audit", "events", 30, "c1") == (
        "ALTER TABLE audit.events_local ON CLUSTER 'c1' MODIFY TTL toDateTime(occurred_at) + toIntervalDay(30)"
    )
    assert storage_table("events") == "events"
    with pytest.raises(MigrationError):
        retention_statement("audit", "events", -1)


def test_settings_refuse_a_cluster_name_that_could_break_out_of_the_sql_quote():
    with pytest.raises(ValidationError):
        Settings.model_validate({"clickhouse": {"cluster": "x' SETTINGS a=1 --"}})
    with pytest.raises(ValidationError):
        Settings.model_validate({"clickhouse": {"retention_days": -5}})
    assert Settings.model_validate({"clickhouse": {"cluster": "audit_cluster"}}).clickhouse.cluster == "audit_cluster"
