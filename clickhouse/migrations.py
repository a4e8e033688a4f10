"""Numbered SQL migrations (``clickhouse/NNNN_verb_object.sql``), applied once each.

Each applied file is recorded in ``<database>.schema_migrations`` with its
checksum; re-running ``auditlog migrate`` applies only what is new and refuses
to continue if an applied file was edited afterwards.

Two sets ship, numbered alike: ``clickhouse/NNNN_*.sql`` for one server (and
the embedded engine) and ``clickhouse/cluster/NNNN_*.sql`` for a cluster
(``ON CLUSTER``, ``ReplicatedReplacingMergeTree`` storage in ``<table>_local``
and a ``Distributed`` table named ``<table>``, so the consumer and the API use
the same table name either way). A non-empty ``cluster`` selects the second.

Retention is not a file: it follows a setting, and a statement rendered from a
setting would change without the file's checksum changing. ``migrate`` is given
the setting and makes the table's TTL match it on every run (``apply_retention``).
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
# How the engine prints back the TTL that ``retention_statement`` sets.
_TTL_DAYS = re.compile(r"\bTTL toDateTime\(occurred_at\) \+ toIntervalDay\((\d+)\)")
CLUSTER_DIR = "cluster"


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()[:16]

    def statements(self, database: str, table: str, cluster: str = "") -> list[str]:
        text = self.sql.replace("{database}", database).replace("{table}", table).replace("{cluster}", cluster)
        lines = [ln for ln in text.splitlines() if not ln.strip().startswith("--")]
        return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]


def load_migrations(cluster: bool = False) -> list[Migration]:
    """The shipped migrations in order; refuses gaps, duplicates and badly named files.

    Args:
        cluster: the ``clickhouse/cluster/`` set instead of the single-server one.
    """
    root = resources.files("clickhouse")
    if cluster:
        root = root.joinpath(CLUSTER_DIR)
    found: list[Migration] = []
    for entry in root.iterdir():
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


def storage_table(table: str, cluster: str = "") -> str:
    """The table that holds the rows: ``table`` itself, or ``<table>_local`` behind a Distributed table."""
    return f"{table}_local" if cluster else table


def migrate(
    client: Client, database: str, table: str, *, cluster: str = "", retention_days: int | None = None
) -> list[str]:
    """Apply every migration not yet recorded; returns the names applied now.

    Args:
        cluster: a cluster name from the server's ``remote_servers``: apply the cluster set ON CLUSTER.
        retention_days: make the table's TTL match it afterwards (0 removes the TTL);
            ``None`` leaves the TTL as it is.
    """
    on_cluster = f" ON CLUSTER '{cluster}'" if cluster else ""
    # On a cluster the record is replicated to every node, so migrate may reach any of them.
    engine = (
        f"ReplicatedReplacingMergeTree('/clickhouse/auditlog/{database}/schema_migrations', '{{shard}}-{{replica}}')"
        if cluster
        else "ReplacingMergeTree"
    )
    client.command(f"CREATE DATABASE IF NOT EXISTS {database}{on_cluster}")
    client.command(
        f"CREATE TABLE IF NOT EXISTS {database}.schema_migrations{on_cluster} "
        "(version UInt32, name String, checksum String, applied_at DateTime DEFAULT now()) "
        f"ENGINE = {engine} ORDER BY version"
    )
    rows = client.query(f"SELECT version, checksum FROM {database}.schema_migrations FINAL").result_rows
    applied = {int(v): str(c) for v, c in rows}
    done: list[str] = []
    for migration in load_migrations(cluster=bool(cluster)):
        if migration.version in applied:
            if applied[migration.version] != migration.checksum:
                raise MigrationError(
                    f"migration {migration.version:04d}_{migration.name} was edited after it was applied; "
                    "add a new migration instead of changing an old one"
                )
            continue
        for statement in migration.statements(database, table, cluster):
            client.command(statement)
        client.insert(
            f"{database}.schema_migrations",
            [[migration.version, migration.name, migration.checksum]],
            column_names=["version", "name", "checksum"],
        )
        logger.info("migration_applied version=%d name=%s", migration.version, migration.name)
        done.append(f"{migration.version:04d}_{migration.name}")
    if retention_days is not None:
        apply_retention(client, database, table, retention_days, cluster=cluster)
    return done


def retention_statement(database: str, table: str, days: int, cluster: str = "") -> str:
    """The ALTER that sets (``days`` > 0) or removes (0) the events TTL on the storage table."""
    if days < 0:
        raise MigrationError(f"retention must be 0 (keep forever) or a number of days, got {days}")
    on_cluster = f" ON CLUSTER '{cluster}'" if cluster else ""
    target = f"{database}.{storage_table(table, cluster)}{on_cluster}"
    if days == 0:
        return f"ALTER TABLE {target} REMOVE TTL"
    return f"ALTER TABLE {target} MODIFY TTL toDateTime(occurred_at) + toIntervalDay({days})"


def current_retention_days(client: Client, database: str, table: str, cluster: str = "") -> int:
    """The TTL in days the storage table has now (0: none), read back from the engine definition.

    Raises:
        MigrationError: the table is missing, or has a TTL that auditlog did not set
            (a hand-made one is left for a person to reconcile, not overwritten).
    """
    rows = client.query(
        "SELECT engine_full FROM system.tables WHERE database = {db:String} AND name = {name:String}",
        parameters={"db": database, "name": storage_table(table, cluster)},
    ).result_rows
    if not rows:
        raise MigrationError(f"table {database}.{storage_table(table, cluster)} does not exist; run migrate first")
    engine_full = str(rows[0][0])
    match = _TTL_DAYS.search(engine_full)
    if match:
        return int(match.group(1))
    if re.search(r"\bTTL\b", engine_full):
        raise MigrationError(
            f"table {database}.{storage_table(table, cluster)} has a TTL auditlog did not set ({engine_full}); "
            "remove it by hand or set it to the form `TTL toDateTime(occurred_at) + toIntervalDay(N)`"
        )
    return 0


def apply_retention(client: Client, database: str, table: str, days: int, *, cluster: str = "") -> bool:
    """Make the TTL of the events and their ids match ``days``; returns whether anything changed.

    Safe to run every time: it reads the TTL back first and issues the ALTER
    only on a difference. Setting a TTL materializes it over existing parts
    (a mutation; see the runbook for its cost on a large table).
    """
    changed = False
    # The write-once id table (clickhouse/0005) keeps an id exactly as long as its event.
    for name in (table, f"{table}_ids"):
        current = current_retention_days(client, database, name, cluster)
        if current == days:
            continue
        client.command(retention_statement(database, name, days, cluster))
        changed = True
        logger.info("retention_changed table=%s.%s from_days=%d to_days=%d",
                    database, storage_table(name, cluster), current, days)
    return changed
