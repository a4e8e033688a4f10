"""The events table's row shape, in one place: its columns, the two write mappings, the digest.

- ``COLUMNS``: the stored columns in insert order (``tests/unit/test_row_shape.py``
  checks them against the DDL of clickhouse/0001 and the cluster twin).
- ``AVRO_RECORD_TO_ROW``: the SQL mapping the consumer uses, from a staged Avro
  record (the schema's shape) to those columns. Every event the consumer stores
  goes through it, whichever decode path found it valid, so the payload JSON is
  the engine's one canonical text.
- ``record_to_row``: the Python mapping, for fixtures and benchmarks that insert
  rows directly. Its payload JSON is orjson's, which spells some floats
  differently (``1.0`` where the engine writes ``1``); nothing in the product
  stores through it.
- ``EVENT_DIGEST``: what makes two stored rows the same event (clickhouse/0005).
"""

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


# The content of an event, for write-once ids: every stored column but schema_version and ingested_at.
# Word for word the expression of clickhouse/0005_create_event_ids.sql (a unit test holds them equal).
EVENT_DIGEST = (
    "cityHash64(workspace_id, toUnixTimestamp64Micro(occurred_at), toString(action), toString(category), "
    "toString(actor_kind), actor_id, actor_display, toString(target_kind), target_id, target_display, payload, "
    "ip, user_agent, request_id, toString(service))"
)

# What free-text search (query_api/search.py) reads: the searched columns lower-cased and joined by a
# line break, a character a search term cannot hold, so a term never matches across two columns. Word for
# word the expression of the skip index in clickhouse/0008_add_search_index.sql (a unit test holds them
# equal): the engine uses the index only for a WHERE written with the same expression.
SEARCH_TEXT = (
    "lowerUTF8(concat(action, '\\n', actor_id, '\\n', actor_display, '\\n', target_kind, '\\n', target_id, '\\n', "
    "target_display, '\\n', payload, '\\n', request_id, '\\n', ip, '\\n', user_agent))"
)

# Staged Avro record (columns named as the schema's fields) -> COLUMNS, with the schema version bound as
# {version:UInt16}. Payload maps become one JSON text; an empty map is null (schemas/contract.py).
AVRO_RECORD_TO_ROW: tuple[tuple[str, str], ...] = (
    ("id", "toUUID(id)"),
    ("workspace_id", "workspace_id"),
    ("occurred_at", "fromUnixTimestamp64Micro(occurred_at, 'UTC')"),
    ("action", "action"),
    ("category", "category"),
    ("actor_kind", "actor.kind"),
    ("actor_id", "actor.id"),
    ("actor_display", "actor.display"),
    ("target_kind", "target.kind"),
    ("target_id", "target.id"),
    ("target_display", "target.display"),
    ("payload", "concat('{\"before\":', if(empty(payload.before), 'null', toJSONString(payload.before)),"
                " ',\"after\":', if(empty(payload.after), 'null', toJSONString(payload.after)), '}')"),
    ("ip", "ifNull(context.ip, '')"),
    ("user_agent", "ifNull(context.user_agent, '')"),
    ("request_id", "ifNull(context.request_id, '')"),
    ("service", "ifNull(context.service, '')"),
    ("schema_version", "{version:UInt16}"),
)
assert tuple(c for c, _ in AVRO_RECORD_TO_ROW) == COLUMNS

# How the engine writes the payload JSON (64-bit integers as numbers, NaN never reaches it).
PAYLOAD_JSON_SETTINGS = {
    "output_format_json_quote_64bit_integers": 0,
    "output_format_json_escape_forward_slashes": 0,
    "output_format_json_quote_denormals": 0,
}

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


# The read mapping: the columns a read selects, in the order ``row_to_event`` takes them.
SELECT_COLUMNS = (
    "id, occurred_at, action, category, actor_kind, actor_id, actor_display, "
    "target_kind, target_id, target_display, payload, ip, user_agent, request_id, service"
)


def as_utc(value: datetime) -> datetime:
    """``value`` as an aware UTC datetime (the engine hands back naive UTC or aware values)."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def row_to_event(row: Sequence[Any], workspace_id: str) -> dict[str, Any]:
    """The event as the API and the exports return it, from a row read with ``SELECT_COLUMNS``."""
    (event_id, occurred_at, action, category, actor_kind, actor_id, actor_display, target_kind, target_id,
     target_display, payload, ip, user_agent, request_id, service) = row
    return {
        "id": str(event_id),
        "workspace_id": workspace_id,
        "occurred_at": as_utc(occurred_at),
        "action": action,
        "category": category,
        "actor": {"kind": actor_kind, "id": actor_id, "display": actor_display},
        "target": {"kind": target_kind, "id": target_id, "display": target_display},
        "payload": orjson.loads(payload) if payload else {"before": None, "after": None},
        "context": {"ip": ip, "user_agent": user_agent, "request_id": request_id, "service": service},
    }


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
