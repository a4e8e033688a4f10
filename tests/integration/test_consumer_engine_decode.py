"""The consumer's two decode paths (the engine parses first; or Python reads every body first) store
the same rows, byte for byte, and refuse the same messages for the same reasons, on the real broker and
the real engine."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from clickhouse.client import get_client
from clickhouse.migrations import migrate
from config.settings import Settings
from consumer import build_consumer
from consumer.dlq_replay import list_dead_letters
from consumer.metrics import ENGINE_SPLITS
from consumer.store import EventStore
from query_api.app import build_context, create_app
from schemas.codec import default_codec
from schemas.event import Actor, AuditEvent, PayloadMap, RequestContext, Target, uuid7
from tests.integration.test_consumer_faults import _run, fast_retries
from tests.support.consumer_checks import (
    assert_exactly_once_as_read,
    caught_up,
    committed_and_end,
    make_events,
)
from tests.support.faults import FailingClient
from tests.support.faults import wait_for as _wait
from tests.support.messages import send_raw as _send_raw
from tests.support.pipeline import produce, stored_count

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse]


def _awkward_events() -> list[AuditEvent]:
    """Payload shapes that could serialise differently in the engine and in Python."""
    at = datetime(2026, 5, 5, 12, 0, 0, 123456, tzinfo=UTC)
    shapes: list[tuple[PayloadMap | None, PayloadMap | None]] = [
        ({"role": "member"}, {"role": "admin"}),
        (None, {"scopes": ["repo:read", "admin/write"], "n": 3, "big": 2**62, "ratio": 0.25, "neg": -7}),
        ({"enabled": True, "note": None}, {"enabled": False, "note": "ünïcødé ✓ \"quoted\" \\ back/slash"}),
        ({}, {}),
        ({"empty_list": []}, None),
        ({"float_int": 1.0, "tiny": 1e-7}, {"float_int": 2.5, "huge": 1.5e300}),
        ({"tab": "a\tb\nc"}, {"ctrl": "\u0001"}),
    ]
    events = []
    for i, (before, after) in enumerate(shapes):
        events.append(AuditEvent(
            id=uuid7(int(at.timestamp() * 1000) + i), workspace_id="ws_shapes", occurred_at=at + timedelta(seconds=i),
            action="MEMBER_ROLE_CHANGED", category="members",
            actor=Actor("user", f"usr_{i}", f"person{i}@example.com"), target=Target("user", "usr_t", "t@example.com"),
            before=before, after=after,
            context=RequestContext(ip="192.0.2.7", user_agent="ua/1 (x; y)", request_id=None, service="svc") if i % 2
            else None,
        ))
    return events


def _table(settings: Settings) -> Sequence[Sequence[Any]]:
    client = get_client(settings.clickhouse.dsn)
    return client.query(
        f"SELECT * EXCEPT ingested_at FROM {settings.events_table} ORDER BY workspace_id, occurred_at, id"
    ).result_rows


def _fallbacks() -> float:
    return sum(s.value for m in ENGINE_SPLITS.collect() for s in m.samples if s.name.endswith("_total"))


def test_the_engine_path_stores_exactly_what_the_reference_path_stores(settings):
    events = _awkward_events() + make_events(2000, seed=12)
    produce(settings, events)
    reference = settings.model_copy(update={
        "clickhouse": settings.clickhouse.model_copy(update={"database": settings.clickhouse.database + "_ref"}),
        "consumer": settings.consumer.model_copy(update={"group_id": settings.consumer.group_id + "-ref",
                                                         "decode_in_engine": False}),
    })
    client = get_client(settings.clickhouse.dsn)
    migrate(client, reference.clickhouse.database, reference.clickhouse.table)
    try:
        fallbacks = _fallbacks()
        for s in (settings, reference):
            stop = threading.Event()
            thread, result = _run(build_consumer(s, stop))

            def every_event_stored(s: Settings = s) -> bool:
                return stored_count(s) == len(events)

            _wait(every_event_stored, 60, "every event to be stored")
            stop.set()
            thread.join(30)
            assert result.get("ok") is True
            if s is settings:
                assert _fallbacks() == fallbacks, "the engine path declined valid events: nothing was compared"
        engine_rows, python_rows = _table(settings), _table(reference)
        assert len(engine_rows) == len(events)
        # Every column byte for byte, the payload's JSON text included: one canonical text per event.
        for engine_row, python_row in zip(engine_rows, python_rows, strict=True):
            assert engine_row == python_row, f"\nengine: {engine_row}\npython: {python_row}"
    finally:
        client.command(f"DROP DATABASE IF EXISTS {reference.clickhouse.database}")


def test_the_engine_path_dead_letters_what_the_reference_path_refuses_and_stores_every_good_event(settings):
    codec = default_codec()
    good = make_events(3000, seed=13)
    valid = codec.encode(good[0].to_record())
    record = good[1].to_record()

    def mutated(**changes: Any) -> bytes:
        return codec.encode({**record, **changes})

    poison = [
        (b"ws_f1", b"not avro at all", "DecodeError"),
        (b"ws_f2", valid[:-9], "DecodeError"),
        (b"ws_f2", valid + b"\x02\x04", "DecodeError"),
        (b"ws_f3", b"\xc3\x01" + bytes(8) + valid[10:], "UnknownSchemaFingerprint"),
        (b"ws_f1", mutated(category="agent"), "InvalidEvent"),
        (b"ws_f1", mutated(actor={"kind": "user", "id": " ", "display": "\u3000"}), "InvalidEvent"),
        (b"ws_f1", mutated(id="not-a-uuid"), "InvalidEvent"),
        (b"ws_f1", mutated(workspace_id="\t"), "InvalidEvent"),
        (b"ws_f1", mutated(action="NOT_IN_CATALOG"), "UnknownAction"),
    ]
    ids = produce(settings, good[:1500])
    where = _send_raw(settings, [(k, v) for k, v, _ in poison])
    ids += produce(settings, good[1500:])
    fallbacks = _fallbacks()
    stop = threading.Event()
    thread, result = _run(build_consumer(settings, stop))
    _wait(lambda: caught_up(settings), 60, "the consumer to pass the poison")
    stop.set()
    thread.join(30)
    assert result.get("ok") is True
    assert _fallbacks() > fallbacks, "the poison never reached the engine path"
    letters = {(e.source_partition, e.source_offset): e for e in list_dead_letters(settings, limit=100)}
    assert len(letters) == len(poison)
    for (key, value, kind), origin in zip(poison, where, strict=True):
        assert letters[origin].reason_kind == kind, letters[origin].reason
        assert letters[origin].value == value and letters[origin].key == key
    assert_exactly_once_as_read(settings, ids)


def test_the_engine_path_commits_nothing_past_stored_data_while_the_store_fails(settings):
    client = FailingClient(get_client(settings.clickhouse.dsn))
    stop = threading.Event()
    runner = build_consumer(fast_retries(settings), stop, client=client)
    first, second = make_events(2000, seed=14), make_events(2000, seed=15)
    ids = produce(settings, first)
    thread, result = _run(runner)
    _wait(lambda: stored_count(settings) == len(first), 60, "the first events to be stored")
    client.failing.set()
    ids += produce(settings, second)
    group, topic, parts = settings.consumer.group_id, settings.kafka.topic, settings.kafka.partitions
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        committed, _ = committed_and_end(settings.kafka.bootstrap_servers, group, topic, parts)
        assert committed <= stored_count(settings) == len(first)
        time.sleep(0.3)
    assert client.refused >= 3
    assert runner.health.report().state == "retrying", "the health report hid the failing store"
    _wait(lambda: runner.health.report().lag >= len(second) - 500, 20, "the lag to show the waiting events")
    assert not runner.health.report().ready
    api = TestClient(create_app(build_context(settings, readiness={"consumer": lambda: (
        runner.health.report().ready, runner.health.report().state, runner.health.report().detail)})))
    readyz = api.get("/readyz")
    assert readyz.status_code == 503 and readyz.json()["checks"]["consumer"].startswith("retrying"), readyz.text
    client.failing.clear()
    _wait(lambda: stored_count(settings) == len(ids), 60, "recovery")
    _wait(lambda: committed_and_end(settings.kafka.bootstrap_servers, group, topic, parts)[0] == len(ids), 30,
          "the commit after recovery")
    assert api.get("/readyz").status_code == 200
    stop.set()
    thread.join(30)
    assert result.get("ok") is True
    assert_exactly_once_as_read(settings, ids)
    store = runner._store
    assert isinstance(store, EventStore)
    staging = store.staging.name.split(".")[1]
    assert not get_client(settings.clickhouse.dsn).query(
        "SELECT name FROM system.tables WHERE database = {db:String} AND name = {t:String}",
        parameters={"db": settings.clickhouse.database, "t": staging}).result_rows, "the staging table was left behind"
