"""Numbered SQL migrations (``clickhouse/NNNN_verb_object.sql``), applied once each.

Each applied file is recorded in ``<database>.schema_migrations`` with its
checksum; re-running ``auditlog migrate`` applies only what is new and refuses
to continue if an applied file was edited afterwards.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from importlib import resources

from clickhouse_connect.driver.client import Client

from clickhouse.errors import MigrationError

logger = logging.getLogger(__name__)

_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()[:16]

    def statements(self, database: str, table: str) -> list[str]:
        text = self.sql.replace("{database}", database).replace("{table}", table)
        lines = [ln for ln in text.splitlines() if not ln.strip().startswith("--")]
        return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]


def load_migrations() -> list[Migration]:
    """The shipped migrations in order; refuses gaps, duplicates and badly named files."""
    found: list[Migration] = []
    for entry in resources.files("clickhouse").iterdir():
        if not entry.name.endswith(".sql"):
            continue
        match = _NAME.match(entry.name)
        if not match:
            raise MigrationError(f"migration file {entry.name} is not named NNNN_verb_object.sql")
        found.append(Migration(int(match.group(1)), match.group(2), entry.read_text("utf-8")))
    found.sort(key=lambda m: m.version)
    for expected, migration in enumerate(found, start=1):
        if migration.version != expected:
            raise MigrationError(
                f"migrations must be numbered 0001, 0002, ... without gaps or duplicates; "
                f"found {migration.version:04d} where {expected:04d} was expected"
            )
    return found


def migrate(client: Client, database: str, table: str) -> list[str]:
    """Apply every migration not yet recorded; returns the names applied now."""
    client.command(f"CREATE DATABASE IF NOT EXISTS {database}")
    client.command(
        f"CREATE TABLE IF NOT EXISTS {database}.schema_migrations "
        "(version UInt32, name String, checksum String, applied_at DateTime DEFAULT now()) "
        "ENGINE = ReplacingMergeTree ORDER BY version"
    )
    rows = client.query(f"SELECT version, checksum FROM {database}.schema_migrations FINAL").result_rows
    applied = {int(v): str(c) for v, c in rows}
    done: list[str] = []
    for migration in load_migrations():
        if migration.version in applied:
            if applied[migration.version] != migration.checksum:
                raise MigrationError(
                    f"migration {migration.version:04d}_{migration.name} was edited after it was applied; "
                    "add a new migration instead of changing an old one"
                )
            continue
        for statement in migration.statements(database, table):
            client.command(statement)
        client.insert(
            f"{database}.schema_migrations",
            [[migration.version, migration.name, migration.checksum]],
            column_names=["version", "name", "checksum"],
        )
        logger.info("migration_applied version=%d name=%s", migration.version, migration.name)
        done.append(f"{migration.version:04d}_{migration.name}")
    return done
