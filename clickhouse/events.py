"""The events table as the consumer writes it: columns, row mapping, the insert."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
from clickhouse_connect.driver.client import Client

COLUMNS: tuple[str, ...] = (
    "id",
    "workspace_id",
    "occurred_at",
    "action",
    "category",
    "actor_kind",
    "actor_id",
    "actor_display",
    "target_kind",
    "target_id",
    "target_display",
    "payload",
    "ip",
    "user_agent",
    "request_id",
    "service",
    "schema_version",
)


def record_to_row(record: dict[str, Any], schema_version: int) -> tuple[Any, ...]:
    """One table row for a decoded, validated Avro record."""
    actor = record["actor"]
    target = record["target"]
    payload = record.get("payload") or {}
    context = record.get("context") or {}
    return (
        record["id"],
        record["workspace_id"],
        record["occurred_at"],
        record["action"],
        record["category"],
        actor["kind"],
        actor["id"],
        actor["display"],
        target["kind"],
        target["id"],
        target["display"],
        orjson.dumps({"before": payload.get("before"), "after": payload.get("after")}).decode(),
        context.get("ip") or "",
        context.get("user_agent") or "",
        context.get("request_id") or "",
        context.get("service") or "",
        schema_version,
    )


def insert_rows(client: Client, table: str, rows: Sequence[Sequence[Any]], dedup_token: str) -> None:
    """One INSERT for the whole batch.

    ``dedup_token`` must be the same when the same batch is retried, so that an
    insert that reached the engine before a timeout is not stored twice.
    """
    client.insert(
        table,
        rows,
        column_names=COLUMNS,
        settings={"insert_deduplication_token": dedup_token},
    )
