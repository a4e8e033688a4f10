"""The log export: a workspace's events in leaf order, one JSONL line per leaf, for offline verification.

Each line is the event exactly as the JSONL export returns it (same keys,
same nesting; ``row_to_event``) plus ``log_index`` and ``leaf_hash`` (hex),
which the leaf does not cover. A leaf whose event is gone from the table has
no line: the verifier reports the hole. ``size`` cuts the export at a
checkpoint's tree size, so the file and the checkpoint describe the same log.
"""

from __future__ import annotations

from collections.abc import Iterator

import orjson

from clickhouse.client import get_client
from clickhouse.events import SELECT_COLUMNS, row_to_event
from config.settings import Settings
from transparency.canonical import format_time
from transparency.sequencer import tables_for
from transparency.store import LogStore

CHUNK = 20_000


def log_lines(settings: Settings, workspace_id: str, size: int | None = None) -> Iterator[bytes]:
    """JSONL lines (each ending in a newline) of the workspace's log, leaves 0..size-1."""
    ch = settings.clickhouse
    client = get_client(ch.dsn, ch.uncompressed_cache_mb)
    store = LogStore(client, tables_for(settings))
    end = store.tree_size(workspace_id) if size is None else size
    for start in range(0, end, CHUNK):
        leaves = client.query(
            f"SELECT leaf_index, event_id, leaf_hash FROM {store.tables.leaves} WHERE workspace_id = {{ws:String}}"
            " AND leaf_index >= {lo:UInt64} AND leaf_index < {hi:UInt64} ORDER BY leaf_index LIMIT 1 BY leaf_index",
            parameters={"ws": workspace_id, "lo": start, "hi": min(end, start + CHUNK)},
        ).result_rows
        ids = [str(e) for _, e, _ in leaves]
        rows = client.query(
            f"SELECT {SELECT_COLUMNS} FROM {settings.events_table} WHERE workspace_id = {{ws:String}}"
            " AND id IN {ids:Array(UUID)} ORDER BY ingested_at LIMIT 1 BY id",
            parameters={"ws": workspace_id, "ids": ids},
        ).result_rows
        by_id = {str(r[0]): r for r in rows}
        for index, event_id, h in leaves:
            row = by_id.get(str(event_id))
            if row is None:
                continue
            event = row_to_event(row, workspace_id)
            event["occurred_at"] = format_time(event["occurred_at"])
            event["log_index"] = int(index)
            event["leaf_hash"] = bytes(h).hex()
            yield orjson.dumps(event) + b"\n"
