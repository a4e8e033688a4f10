"""Consumer fault tests in one process, on the real broker and the real engine:
a failing store, poison messages and the dead-letter topic, a rebalance between two consumers."""

from __future__ import annotations

import dataclasses
import threading
import time
from typing import Any

import pytest
from prometheus_client import Counter

from clickhouse.client import get_client
from config.settings import Settings
from consumer import build_consumer
from consumer.dlq_replay import list_dead_letters, replay_dead_letters
from consumer.loop import ConsumerLoop
from consumer.metrics import DLQ_MESSAGES, INSERT_RETRIES
from schemas.catalog import load_catalog
from schemas.codec import default_codec
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


def _run(runner: ConsumerLoop) -> tuple[threading.Thread, dict[str, Any]]:
    result: dict[str, Any] = {}
    thread = threading.Thread(target=lambda: result.setdefault("ok", runner.run().ok), daemon=True)
    thread.start()
    return thread, result


def _sample_counter(counter: Counter) -> float:
    return sum(s.value for m in counter.collect() for s in m.samples if s.name.endswith("_total"))


def fast_retries(settings: Settings, **changes: Any) -> Settings:
    consumer = settings.consumer.model_copy(update={"retry_initial_seconds": 0.05, "retry_max_seconds": 0.4,
                                                    **changes})
    return settings.model_copy(update={"consumer": consumer})


def test_a_failing_store_commits_nothing_past_stored_data_and_loses_nothing_after_recovery(settings):
    store = FailingClient(get_client(settings.clickhouse.dsn))
    stop = threading.Event()
    runner = build_consumer(fast_retries(settings), stop, client=store)
    first, second = make_events(3000, seed=2), make_events(3000, seed=3)
    retries_before = _sample_counter(INSERT_RETRIES)
    ids = produce(settings, first)
    thread, result = _run(runner)
    _wait(lambda: stored_count(settings) == len(first), 60, "the first events to be stored")

    store.failing.set()
    ids += produce(settings, second)
    group, topic, parts = settings.consumer.group_id, settings.kafka.topic, settings.kafka.partitions
    stored_at_outage = stored_count(settings)
    deadline = time.monotonic() + 4
    while time.monotonic() < deadline:
        committed, _end = committed_and_end(settings.kafka.bootstrap_servers, group, topic, parts)
        stored = stored_count(settings)
        assert committed <= stored, f"{committed} messages committed but only {stored} events stored"
        assert stored == stored_at_outage, "rows appeared while the store was failing"
        time.sleep(0.3)
    assert store.refused >= 3, "the consumer did not keep retrying during the outage"
    assert committed_and_end(settings.kafka.bootstrap_servers, group, topic, parts)[0] == len(first)

    store.failing.clear()
    _wait(lambda: stored_count(settings) == len(ids), 60, "recovery after the outage")
    _wait(lambda: committed_and_end(settings.kafka.bootstrap_servers, group, topic, parts)[0] == len(ids),
          30, "the commit after recovery")
    stop.set()
    thread.join(30)
    assert result.get("ok") is True
    assert _sample_counter(INSERT_RETRIES) > retries_before
    assert_exactly_once_as_read(settings, ids)


def test_poison_messages_go_to_the_dlq_with_their_origin_and_a_fixed_consumer_replays_them(settings):
    codec = default_codec()
    held_back = "MEMBER_ROLE_CHANGED"  # the "bug": this build's catalog lacks an action
    good = [e for e in make_events(2000, seed=4) if e.action != held_back]
    extra = [e for e in make_events(1000, seed=5) if e.action == held_back]
    assert extra, "the generator made no event of the held-back action; the test would prove nothing"
    valid = codec.encode(good[0].to_record())
    bad_record = {**good[1].to_record(), "action": "NOT_A_CATALOG_ACTION"}
    poison = [
        (b"ws_f1", b"definitely not avro"),
        (b"ws_f2", valid[: len(valid) // 2]),
        (b"ws_f3", b"\xc3\x01" + b"\x00\x11\x22\x33\x44\x55\x66\x77" + valid[10:]),
        (b"ws_f1", codec.encode(bad_record)),
    ]
    expected_kind = ["DecodeError", "DecodeError", "UnknownSchemaFingerprint", "UnknownAction"]
    dlq_before = _sample_counter(DLQ_MESSAGES)

    ids = produce(settings, good[:900])
    where = _send_raw(settings, poison)
    ids += produce(settings, good[900:])
    extra_ids = produce(settings, extra)

    catalog = load_catalog()
    buggy = dataclasses.replace(catalog, actions={k: v for k, v in catalog.actions.items() if k != held_back})
    stop = threading.Event()
    thread, result = _run(build_consumer(settings, stop, catalog=buggy))
    topic = settings.kafka.topic
    _wait(lambda: caught_up(settings), 60, "the consumer to pass the poison")
    stop.set()
    thread.join(30)
    assert result.get("ok") is True
    assert stored_count(settings) == len(ids), "a good event was lost next to the poison"

    letters = list_dead_letters(settings, limit=1000)
    assert len(letters) == len(poison) + len(extra)
    by_origin = {(e.source_partition, e.source_offset): e for e in letters}
    for (key, value), (partition, offset), kind in zip(poison, where, expected_kind, strict=True):
        letter = by_origin[(partition, offset)]
        assert letter.source_topic == topic
        assert letter.value == value and letter.key == key, "the DLQ must keep the original bytes"
        assert letter.reason_kind == kind and letter.reason.startswith(kind)
    assert _sample_counter(DLQ_MESSAGES) - dlq_before == len(poison) + len(extra)

    # The fix is deployed: replay; the held-back events get stored, the real poison is dead-lettered again.
    assert replay_dead_letters(settings) == len(poison) + len(extra)
    stop2 = threading.Event()
    thread, result = _run(build_consumer(settings, stop2))
    _wait(lambda: stored_count(settings) == len(ids) + len(extra_ids), 60, "the replayed events to be stored")
    _wait(lambda: caught_up(settings), 60, "the consumer to pass the replayed poison")
    stop2.set()
    thread.join(30)
    assert result.get("ok") is True
    # One more run replays only what failed again, and terminates.
    assert replay_dead_letters(settings) == len(poison)
    assert replay_dead_letters(settings) == 0
    assert_exactly_once_as_read(settings, ids + extra_ids)


def test_two_consumers_in_one_group_with_rebalances_mid_stream_lose_nothing_and_show_nothing_twice(settings):
    events = make_events(24_000, seed=6)
    ids: list[str] = []
    producing = threading.Thread(target=lambda: ids.extend(produce(settings, events)), daemon=True)
    stop_a, stop_b = threading.Event(), threading.Event()
    a = build_consumer(settings, stop_a)
    thread_a, result_a = _run(a)
    producing.start()
    _wait(lambda: stored_count(settings) > 2000, 60, "consumer A to store events")
    b = build_consumer(settings, stop_b)  # joins: the group rebalances while A holds an open batch
    thread_b, result_b = _run(b)
    _wait(lambda: stored_count(settings) > 12_000, 60, "both consumers to store events")
    stop_a.set()  # leaves: its partitions move to B mid-stream
    thread_a.join(30)
    producing.join(120)
    assert len(ids) == len(events)
    _wait(lambda: stored_count(settings) == len(events), 90, "every event to be stored")
    stop_b.set()
    thread_b.join(30)
    assert result_a.get("ok") is True and result_b.get("ok") is True
    assert a.stored_batches > 0 and b.stored_batches > 0, "the stream was not actually shared"
    assert_exactly_once_as_read(settings, ids)
