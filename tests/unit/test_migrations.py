from __future__ import annotations

from clickhouse.migrations import load_migrations


def test_migrations_are_numbered_without_gaps_and_named_verb_object():
    migrations = load_migrations()
    assert [m.version for m in migrations] == list(range(1, len(migrations) + 1))
    assert migrations[0].name == "create_events"


def test_migration_statements_are_templated_with_database_and_table():
    statements = load_migrations()[0].statements("audit_x", "events_y")
    assert any("audit_x.events_y" in s for s in statements)
    assert all("{database}" not in s and "{table}" not in s for s in statements)
