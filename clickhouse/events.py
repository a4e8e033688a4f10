"""The events table as the consumer writes it: columns, row mapping, the insert."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
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


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def to_micros(value: datetime | int) -> int:
    """Microseconds since the epoch, the form the insert sends for ``occurred_at`` (DateTime64(6))."""
    if isinstance(value, int):
        return value
    return (value - _EPOCH) // _MICROSECOND


def record_to_row(record: dict[str, Any], schema_version: int) -> tuple[Any, ...]:
    """One table row for a decoded, validated Avro record (id as text, occurred_at as epoch microseconds).

    Every row of a batch must use the same Python types per column: the
    consumer's fast decoder produces exactly these.
    """
    actor = record["actor"]
    target = record["target"]
    payload = record.get("payload") or {}
    context = record.get("context") or {}
    return (
        str(record["id"]),
        record["workspace_id"],
        to_micros(record["occurred_at"]),
        record["action"],
        record["category"],
        actor["kind"],
        actor["id"],
        actor["display"],
        target["kind"],
        target["id"],
        target["display"],
        # An empty map is stored as null, as the engine-side decoder (consumer/engine_decode.py) stores it.
        orjson.dumps({"before": payload.get("before") or None, "after": payload.get("after") or None}).decode(),
        context.get("ip") or "",
        context.get("user_agent") or "",
        context.get("request_id") or "",
        context.get("service") or "",
        schema_version,
    )


def insert_rows(client: Client, table: str, rows: Sequence[Sequence[Any]], dedup_token: str) -> None:
    """One INSERT for the whole batch.

    ``dedup_token`` must be the same when the same batch is retried, so that an
    insert that reached the engine before a timeout is not stored twice. The
    rows are sent column by column (transposed in C by ``zip``), which spares
    clickhouse-connect a per-row pass.
    """
    if not rows:
        return
    client.insert(
        table,
        list(zip(*rows, strict=True)),
        column_names=COLUMNS,
        column_oriented=True,
        settings={"insert_deduplication_token": dedup_token},
    )
