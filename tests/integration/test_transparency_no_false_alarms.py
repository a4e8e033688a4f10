"""No false alarms: after the consumer's faults, with the sequencer running throughout, ``verify`` passes.

Each test runs a consumer fault of tests/integration/test_consumer_faults.py on
the real broker and engine while the sequencer appends in a thread (as
``auditlog consume`` runs it), then checks every workspace's log: ``verify``
finds nothing, and each stored event is exactly one leaf. A tamper detector
that cried wolf after an outage, a rebalance, a DLQ replay or a merge would be
switched off by its operators; these tests attack that.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from clickhouse.client import get_client
from config.settings import Settings
from consumer import build_consumer
from consumer.dlq_replay import replay_dead_letters
from schemas.catalog import load_catalog
from tests.integration.test_consumer_faults import _run, fast_retries
from tests.support.consumer_checks import WORKSPACES, caught_up, make_events
from tests.support.faults import FailingClient
from tests.support.faults import wait_for as _wait
from tests.support.messages import send_raw as _send_raw
from tests.support.pipeline import produce, store_directly, stored_count
from transparency.audit import verify_workspace
from transparency.checkpoint import Keyring, Signer
from transparency.metrics import ROUND_FAILURES
from transparency.sequencer import Sequencer

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse]


def _logging(settings: Settings) -> Settings:
    return settings.model_copy(update={"transparency": settings.transparency.model_copy(update={
        "settle_seconds": 0.5, "overlap_seconds": 2.0, "checkpoint_seconds": 0.5, "poll_seconds": 0.2})})


@contextmanager
def sequencing(settings: Settings, client: object | None = None) -> Iterator[Sequencer]:
    """The sequencer appending in a thread for the duration of the block (``client``: e.g. a failing one)."""
    sequencer = Sequencer(client or get_client(settings.clickhouse.dsn), settings, Signer.generate())  # type: ignore[arg-type]
    stop = threading.Event()
    thread = threading.Thread(target=sequencer.run, args=(stop,), daemon=True)
    thread.start()
    try:
        yield sequencer
    finally:
        stop.set()
        thread.join(60)


def _assert_logs_verify(settings: Settings, sequencer: Sequencer) -> None:
    """Every stored event one leaf (after the rows settle), and verify finds nothing in any workspace."""
    time.sleep(settings.transparency.settle_seconds)
    while sequencer.round().leaves:
        pass
    sequencer.checkpoint_now()
    client = get_client(settings.clickhouse.dsn)
    ring = Keyring([sequencer._signer.public_key])
    for ws in WORKSPACES:
        report = verify_workspace(settings, ws, ring)
        assert report.ok, (ws, report.summary(), report.divergences[:3])
        events = client.query(f"SELECT uniqExact(id) FROM {settings.events_table} WHERE workspace_id = {{ws:String}}",
                              parameters={"ws": ws}).result_rows[0][0]
        assert report.tree_size == report.leaves_checked == int(events), (ws, report.tree_size, events)


def test_verify_passes_after_a_store_outage_that_also_failed_sequencer_rounds(settings: Settings) -> None:
    settings = _logging(settings)
    store = FailingClient(get_client(settings.clickhouse.dsn))
    first, second = make_events(3000, seed=31), make_events(3000, seed=32)
    stop = threading.Event()
    with sequencing(settings, store) as sequencer:
        thread, result = _run(build_consumer(fast_retries(settings), stop, client=store))
        ids = produce(settings, first)
        _wait(lambda: stored_count(settings) == len(first), 60, "the first events to be stored")
        failed_rounds = ROUND_FAILURES._value.get()
        store.failing.set()  # the engine is unreachable for the consumer and the sequencer alike
        ids += produce(settings, second)
        time.sleep(3)
        assert store.refused >= 3
        assert ROUND_FAILURES._value.get() > failed_rounds, "no sequencer round met the outage"
        store.failing.clear()
        _wait(lambda: stored_count(settings) == len(ids), 60, "recovery after the outage")
        stop.set()
        thread.join(30)
    assert result.get("ok") is True
    _assert_logs_verify(settings, sequencer)


def test_verify_passes_after_a_rebalance_between_two_consumers(settings: Settings) -> None:
    settings = _logging(settings)
    events = make_events(12_000, seed=33)
    stop_a, stop_b = threading.Event(), threading.Event()
    with sequencing(settings) as sequencer:
        thread_a, _ = _run(build_consumer(settings, stop_a))
        producing = threading.Thread(target=lambda: produce(settings, events), daemon=True)
        producing.start()
        _wait(lambda: stored_count(settings) > 2000, 60, "consumer A to store events")
        thread_b, _ = _run(build_consumer(settings, stop_b))  # joins mid-stream: a rebalance
        _wait(lambda: stored_count(settings) > 6000, 60, "both consumers to store events")
        stop_a.set()  # leaves mid-stream: another rebalance
        thread_a.join(30)
        producing.join(120)
        _wait(lambda: stored_count(settings) == len(events), 90, "every event to be stored")
        stop_b.set()
        thread_b.join(30)
    _assert_logs_verify(settings, sequencer)


def test_verify_passes_after_a_dlq_replay_stores_held_back_events_late(settings: Settings) -> None:
    settings = _logging(settings)
    held_back = "MEMBER_ROLE_CHANGED"
    good = [e for e in make_events(2000, seed=34) if e.action != held_back]
    extra = [e for e in make_events(1000, seed=35) if e.action == held_back]
    assert extra, "no event of the held-back action; the test would prove nothing"
    catalog = load_catalog()
    buggy = dataclasses.replace(catalog, actions={k: v for k, v in catalog.actions.items() if k != held_back})
    with sequencing(settings) as sequencer:
        produce(settings, good)
        _send_raw(settings, [(b"ws_f1", b"definitely not avro")])
        produce(settings, extra)
        stop = threading.Event()
        thread, _ = _run(build_consumer(settings, stop, catalog=buggy))
        _wait(lambda: caught_up(settings), 60, "the consumer to pass the held-back events")
        stop.set()
        thread.join(30)
        time.sleep(2 * settings.transparency.settle_seconds + settings.transparency.poll_seconds)
        assert replay_dead_letters(settings) == len(extra) + 1  # the fix deployed: replay
        stop2 = threading.Event()
        thread, _ = _run(build_consumer(settings, stop2))
        _wait(lambda: stored_count(settings) == len(good) + len(extra), 60, "the replayed events to be stored")
        stop2.set()
        thread.join(30)
    _assert_logs_verify(settings, sequencer)


def test_verify_passes_after_optimize_final_merges_away_redelivered_copies(settings: Settings) -> None:
    settings = _logging(settings)
    events = make_events(3000, seed=36)
    sequencer = Sequencer(get_client(settings.clickhouse.dsn), settings, Signer.generate())
    store_directly(settings, events[:2000], token="first")
    store_directly(settings, events[:1000], token="redelivered")  # copies of stored events, another part
    _assert_logs_verify(settings, sequencer)
    client = get_client(settings.clickhouse.dsn)
    database = settings.clickhouse.database
    for table in (settings.events_table, f"{database}.transparency_leaves", f"{database}.transparency_nodes",
                  f"{database}.transparency_checkpoints"):
        client.command(f"OPTIMIZE TABLE {table} FINAL")
    _assert_logs_verify(settings, sequencer)
    store_directly(settings, events[2000:], token="after")  # the log goes on after the merge
    client.command(f"OPTIMIZE TABLE {settings.events_table} FINAL")
    _assert_logs_verify(settings, sequencer)
