"""The benchmark dataset: realistic events from ``EventGenerator``, expanded in the engine.

Generating 10M events one by one in Python takes minutes per million, so the
generator makes a *pool* of realistic events per workspace (its own people,
tokens, integrations, payloads and action mix) and the engine expands the pool
to N rows with ``INSERT ... SELECT FROM numbers(N)``: every row gets its own
time (spread over a year, oldest first), its own UUIDv7 derived from that time,
and its own request id; action, actor, target and payload are drawn from the
workspace's pool, so the mixes are the generator's. Workspace sizes are skewed:
``ws_000`` holds a fifth of all events (the big tenant the hard page shapes
run against), the others share the rest. One actor is rare on purpose (about
one event in 100k) for the "rare actor" shape.

The very same rows are then written to CSV for PostgreSQL's COPY, so both
engines hold identical data.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
from clickhouse_connect.driver.client import Client

from producers.synthetic import EventGenerator

logger = logging.getLogger(__name__)

RARE_ACTOR = "mallory.contractor@external-audit.example.net"
RARE_ACTOR_SEARCH = "mallory"
BIG_WORKSPACE = "ws_000"
SPAN = timedelta(days=365)

POOL_COLUMNS = (
    "ws_idx", "k", "workspace_id", "action", "category", "actor_kind", "actor_id", "actor_display",
    "target_kind", "target_id", "target_display", "payload", "ip", "user_agent", "service",
)


@dataclass(frozen=True)
class Dataset:
    """What was loaded: where, how much, and the time span it covers."""

    table: str
    events: int
    workspaces: int
    start: datetime
    end: datetime


def workspace_name(index: int) -> str:
    return f"ws_{index:03d}"


def build_pool(client: Client, pool_table: str, workspaces: int, per_workspace: int, seed: int = 7) -> int:
    """Generate ``per_workspace`` realistic events for each workspace into ``pool_table``."""
    client.command(
        f"CREATE TABLE {pool_table} (ws_idx UInt16, k UInt32, workspace_id String, action String, category String,"
        " actor_kind String, actor_id String, actor_display String, target_kind String, target_id String,"
        " target_display String, payload String, ip String, user_agent String, service String)"
        " ENGINE = MergeTree ORDER BY (ws_idx, k)"
    )
    gen = EventGenerator(seed=seed)
    rng = random.Random(seed)
    at = datetime(2026, 1, 1, tzinfo=UTC)
    services = ("members-api", "tokens-api", "integrations-api", "pipelines-runner", "routines", "web")
    agents = ("Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 Safari/605.1.15",
              "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/126.0 Safari/537.36",
              "auditlog-routines/2.3", "python-httpx/0.27", "terraform-provider/1.8")
    total = 0
    for w in range(workspaces):
        ws = workspace_name(w)
        rows = []
        for k in range(per_workspace):
            e = gen.event(ws, at)
            payload = orjson.dumps({"before": e.before, "after": e.after}).decode()
            ip = e.context.ip if e.context and e.context.ip else ""
            rows.append((w, k, ws, e.action, e.category, e.actor.kind, e.actor.id, e.actor.display, e.target.kind,
                         e.target.id, e.target.display, payload, ip, rng.choice(agents), rng.choice(services)))
        client.insert(pool_table, rows, column_names=POOL_COLUMNS)
        total += len(rows)
    logger.info("bench_pool_built workspaces=%d per_workspace=%d", workspaces, per_workspace)
    return total


def _hex(expr: str) -> str:
    return f"leftPad(lower(hex({expr})), 16, '0')"


def expand(client: Client, table: str, pool_table: str, events: int, workspaces: int, per_workspace: int,
           end: datetime) -> Dataset:
    """Insert ``events`` rows into ``table`` (the product's schema), drawn from the pool."""
    start = end - SPAN
    start_us = int(start.timestamp() * 1_000_000)
    step_us = max(int(SPAN.total_seconds() * 1_000_000) // max(events, 1), 1)
    big = "cityHash64(number, 1) % 5 = 0"
    ws_expr = f"if({big}, 0, if({workspaces} = 1, 0, 1 + cityHash64(number, 2) % ({workspaces} - 1)))"
    rare = "cityHash64(number, 4) % 100000 = 0"
    ms = _hex("intDiv(us, 1000)")
    r1, r2 = _hex("cityHash64(number, 5)"), _hex("cityHash64(number, 6)")
    uuid_expr = (
        f"toUUID(concat(substring({ms}, 5, 8), '-', substring({ms}, 13, 4), '-7', substring({r1}, 1, 3), '-8',"
        f" substring({r1}, 4, 3), '-', substring({r1}, 7, 10), substring({r2}, 1, 2)))"
    )
    sql = f"""
        INSERT INTO {table} (id, workspace_id, occurred_at, action, category, actor_kind, actor_id, actor_display,
                             target_kind, target_id, target_display, payload, ip, user_agent, request_id, service,
                             schema_version)
        SELECT {uuid_expr}, p.workspace_id, fromUnixTimestamp64Micro(us, 'UTC'), p.action, p.category,
               if(r.rare, 'user', p.actor_kind), if(r.rare, 'usr_rare0001', p.actor_id),
               if(r.rare, '{RARE_ACTOR}', p.actor_display),
               p.target_kind, p.target_id, p.target_display, p.payload, p.ip, p.user_agent,
               concat('req_', substring({r2}, 3, 12)), p.service, 1
        FROM (
            SELECT number, toInt64({start_us} + number * {step_us} + cityHash64(number, 3) % {step_us}) AS us,
                   toUInt16({ws_expr}) AS w, toUInt32(cityHash64(number, 7) % {per_workspace}) AS k, {rare} AS rare
            FROM numbers({events})
        ) AS r
        INNER JOIN {pool_table} AS p ON p.ws_idx = r.w AND p.k = r.k
    """
    client.command(sql, settings={"max_insert_threads": 2, "max_threads": 2})
    return Dataset(table, events, workspaces, start, end)


def load(client: Client, database: str, table: str, events: int, workspaces: int, per_workspace: int,
         end: datetime) -> Dataset:
    """The whole dataset in ``database.table``: the pool generated, expanded to ``events`` rows ending at
    ``end``, merged (``OPTIMIZE … FINAL``), and the pool dropped."""
    pool = f"{database}.pool"
    build_pool(client, pool, workspaces, per_workspace)
    data = expand(client, f"{database}.{table}", pool, events, workspaces, per_workspace, end)
    client.command(f"OPTIMIZE TABLE {database}.{table} FINAL")
    client.command(f"DROP TABLE {pool}")
    return data


def export_csv(client: Client, table: str, path: Path) -> None:
    """The table's rows as CSV in the column order of PostgreSQL's table (see postgres.SCHEMA)."""
    client.command(
        f"INSERT INTO FUNCTION file('{path}', 'CSV')"
        " SELECT id, workspace_id, formatDateTime(occurred_at, '%Y-%m-%d %H:%i:%S.%fZ', 'UTC'), action, category,"
        " actor_kind, actor_id, actor_display, target_kind, target_id, target_display, payload, ip, user_agent,"
        f" request_id, service, schema_version FROM {table}",
        settings={"engine_file_truncate_on_insert": 1},
    )
