"""Ids are write-once across batches, restarts and merges; a backfill spanning decades is stored without
holding anyone back; staging tables of killed consumers are removed (issue 13, items 1, 7, 9)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from clickhouse.client import get_client
from consumer import build_consumer
from consumer.dlq_replay import list_dead_letters
from consumer.staging import STAGING_PREFIX
from consumer.store import EventStore
from tests.support.messages import consume_until_caught_up, encode, record, send_raw
from tests.support.pipeline import all_pages, api_client, bearer

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse]


def _rows(settings, workspace: str) -> Sequence[Sequence[Any]]:
    return get_client(settings.clickhouse.dsn).query(
        f"SELECT toString(id), occurred_at, action, payload FROM {settings.events_table} "
        "WHERE workspace_id = {ws:String} ORDER BY occurred_at, id", parameters={"ws": workspace}).result_rows


def test_a_different_event_under_a_stored_id_is_dead_lettered_and_the_original_stays(settings):
    ws = "ws_ids"
    at = datetime(2026, 4, 1, 9, 0, tzinfo=UTC)
    original = record(ws, occurred_at=at)
    same_time_other_action = {**original, "action": "MEMBER_REMOVED", "payload": {"before": None, "after": None}}
    other_time = {**original, "occurred_at": at + timedelta(days=3)}
    other_workspace = {**original, "workspace_id": "ws_ids_other"}
    twin_a = record(ws, occurred_at=at + timedelta(hours=1))
    twin_b = {**twin_a, "payload": {"before": {"role": "member"}, "after": {"role": "owner"}}}

    send_raw(settings, [(ws.encode(), encode(original))])
    consume_until_caught_up(settings)  # stored, committed: the next ones come in other batches, after a restart
    where = send_raw(settings, [
        (ws.encode(), encode(same_time_other_action)),
        (ws.encode(), encode(other_time)),
        (b"ws_ids_other", encode(other_workspace)),
        (ws.encode(), encode(original)),            # a redelivery of the same event: a no-op
        (ws.encode(), encode(twin_a)),
        (ws.encode(), encode(twin_b)),              # the same batch: the first one wins
        (ws.encode(), encode(twin_a)),
    ])
    consume_until_caught_up(settings)

    client = get_client(settings.clickhouse.dsn)
    for _ in range(2):
        rows = _rows(settings, ws)
        assert [(r[0], r[2]) for r in rows] == [(str(original["id"]), "MEMBER_ROLE_CHANGED"),
                                                (str(twin_a["id"]), "MEMBER_ROLE_CHANGED")]
        assert '"role":"admin"' in rows[1][3], "the first content of the twin id was kept"
        assert not _rows(settings, "ws_ids_other")
        client.command(f"OPTIMIZE TABLE {settings.events_table} FINAL")  # merges change nothing
    letters = {(e.source_partition, e.source_offset): e for e in list_dead_letters(settings, limit=100)}
    conflicts = [where[i] for i in (0, 1, 2, 5)]
    assert sorted(letters) == sorted(conflicts)
    assert all(letters[o].reason.startswith("id conflict:") for o in conflicts)

    api = api_client(settings)
    page = all_pages(api, f"/v1/workspaces/{ws}/audit/events", bearer(settings, ws), {"limit": 50})
    assert [e["id"] for e in page] == [str(twin_a["id"]), str(original["id"])]
    one = api.get(f"/v1/workspaces/{ws}/audit/events/{original['id']}", headers=bearer(settings, ws))
    assert one.status_code == 200 and one.json()["action"] == "MEMBER_ROLE_CHANGED"


def test_a_backfill_spanning_decades_is_stored_in_one_run_with_every_other_workspace(settings):
    big = settings.model_copy(update={"consumer": settings.consumer.model_copy(
        update={"batch_max_events": 5000, "batch_max_seconds": 2.0})})
    ws = "ws_backfill"
    monthly = [record(ws, occurred_at=datetime(2014 + (5 + m) // 12, (5 + m) % 12 + 1, 15, tzinfo=UTC))
               for m in range(150)]  # 2014-06 .. 2026-11
    edges = [record("ws_edges", occurred_at=datetime(1900, 1, 1, tzinfo=UTC) + timedelta(days=31 * i))
             for i in range(200)]
    edges += [record("ws_edges", occurred_at=datetime(2299, 12, 31, tzinfo=UTC) - timedelta(days=31 * i))
              for i in range(200)]
    others = [record(f"ws_other_{i % 3}", occurred_at=datetime(2026, 11, 1, tzinfo=UTC) + timedelta(minutes=i))
              for i in range(300)]
    messages = [(r["workspace_id"].encode(), encode(r)) for r in monthly + edges + others]
    send_raw(big, messages)
    consume_until_caught_up(big, timeout=120)

    client = get_client(settings.clickhouse.dsn)
    ((stored, months),) = client.query(
        f"SELECT uniqExact(id), uniqExact(toYYYYMM(occurred_at)) FROM {settings.events_table}").result_rows
    assert stored == len(messages)
    assert months > 350, "the test did not span enough monthly partitions to prove anything"
    assert not list_dead_letters(settings, limit=10)


def test_staging_tables_left_by_killed_consumers_are_dropped_at_start(settings):
    client = get_client(settings.clickhouse.dsn)
    db = settings.clickhouse.database
    for name in (f"{STAGING_PREFIX}99999999_deadbeef0001", f"{STAGING_PREFIX}deadbeef0002"):
        client.command(f"CREATE TABLE {db}.{name} (x UInt8) ENGINE = Memory")
    runner = build_consumer(settings)
    left = [r[0] for r in client.query(
        "SELECT name FROM system.tables WHERE database = {db:String} AND startsWith(name, {p:String})",
        parameters={"db": db, "p": STAGING_PREFIX}).result_rows]
    assert left == [], left
    store = runner._store
    assert isinstance(store, EventStore)
    store.staging.create()  # its own table is made again on first use
    store.close()
