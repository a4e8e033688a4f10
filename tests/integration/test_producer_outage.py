"""A broker that is down or slow loses no event: queued until it returns, or spooled and replayed.

Each test runs its own single-node broker (the session broker stays up for
the other tests) and stops and restarts it around the emits.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from config.settings import Settings
from consumer.topics import ensure_topics
from deploy.local_kafka import LocalKafka, LocalKafkaConfig
from producers.producer import AuditProducer, DeliveryReport
from producers.replay import replay_spool
from producers.spool import Spool
from producers.synthetic import EventGenerator
from tests.support.pipeline import all_pages, api_client, bearer, consume_until

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse]

WS = "ws_outage"


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def own_broker(kafka_bootstrap, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalKafka]:
    repo = Path(__file__).resolve().parents[2]
    kafka = LocalKafka(LocalKafkaConfig(
        bootstrap_servers=f"127.0.0.1:{_port()}", controller_port=_port(),
        data_dir=tmp_path_factory.mktemp("outage-kafka"),
        jars_dir=Path(os.environ.get("AUDITLOG_KAFKA__LOCAL_JARS_DIR", repo / "var" / "kafka-lib")),
        heap="384m", partitions=2,
    ))
    kafka.start()
    try:
        yield kafka
    finally:
        kafka.stop()


@pytest.fixture
def outage_settings(clickhouse_settings: Settings, own_broker, tmp_path) -> Settings:
    s = clickhouse_settings.model_copy(update={
        "kafka": clickhouse_settings.kafka.model_copy(update={
            "bootstrap_servers": own_broker.config.bootstrap_servers, "topic": "audit.events.outage",
            "dlq_topic": "audit.events.outage.dlq", "partitions": 2}),
        "producer": clickhouse_settings.producer.model_copy(update={"spool_dir": tmp_path / "spool"}),
        "consumer": clickhouse_settings.consumer.model_copy(update={
            "group_id": "outage-test", "batch_max_seconds": 0.3}),
    })
    ensure_topics(s.kafka.bootstrap_servers, [s.kafka.topic, s.kafka.dlq_topic], 2)
    return s


def _events(n: int, seed: int):
    start = datetime(2026, 2, 1, tzinfo=UTC)
    return list(EventGenerator(seed=seed).history([WS], n, start, start + timedelta(days=5)))


def _api_ids(settings: Settings) -> list[str]:
    client = api_client(settings)
    return [e["id"] for e in all_pages(client, f"/v1/workspaces/{WS}/audit/events", bearer(settings, WS),
                                       {"limit": 200})]


@pytest.mark.slow
def test_events_emitted_while_the_broker_is_down_arrive_once_when_it_returns(outage_settings, own_broker):
    settings = outage_settings.model_copy(update={
        "producer": outage_settings.producer.model_copy(update={"delivery_timeout_ms": 90_000})})
    reports: list[DeliveryReport] = []
    own_broker.stop()
    events = _events(300, seed=21)
    producer = AuditProducer.from_settings(settings, on_delivery=reports.append, kafka_overrides={"log_level": 0})

    async def emit_from_asyncio() -> float:
        started = time.perf_counter()
        for event in events:
            producer.emit_event(event)
        return time.perf_counter() - started

    # A loop of its own on its own thread: other tests (Playwright's sync API) may leave one running here.
    timings: list[float] = []
    runner = threading.Thread(target=lambda: timings.append(asyncio.run(emit_from_asyncio())))
    runner.start()
    runner.join(60)
    elapsed = timings[0]
    # emit() queued all 300 while no broker answered: it did not wait for one (delivery timeout is 90 s).
    assert elapsed < 5.0
    assert reports == []
    own_broker.start()
    assert producer.flush(60) == 0
    producer.close()
    assert len(reports) == 300 and all(r.delivered for r in reports)
    assert len(Spool(settings.producer.spool_dir)) == 0
    consume_until(settings, 300)
    ids = _api_ids(settings)
    assert sorted(ids) == sorted(str(e.id) for e in events)
    assert len(ids) == len(set(ids))


@pytest.mark.slow
@pytest.mark.parametrize("with_reports", [True, False], ids=["report-hook", "no-hook"])
def test_events_past_the_delivery_timeout_are_spooled_and_replayed_exactly_once(outage_settings, own_broker,
                                                                                with_reports):
    # Without a report hook the producer uses one shared delivery callback: it must spool just the same.
    settings = outage_settings.model_copy(update={
        "producer": outage_settings.producer.model_copy(update={"delivery_timeout_ms": 2_000})})
    delivered_first = _events(20, seed=31)
    with AuditProducer.from_settings(settings) as producer:
        for event in delivered_first:
            producer.emit_event(event)
    own_broker.stop()
    lost_without_spool = _events(50, seed=32)
    reports: list[DeliveryReport] = []
    producer = AuditProducer.from_settings(settings, on_delivery=reports.append if with_reports else None,
                             kafka_overrides={"log_level": 0})
    for event in lost_without_spool:
        producer.emit_event(event)
    producer.flush(15)
    producer.close(timeout=1)
    spool = Spool(settings.producer.spool_dir)
    assert len(spool) == 50
    assert len(reports) == (50 if with_reports else 0)
    assert all(r.spooled and not r.delivered for r in reports)
    # One event that did reach the broker is in the spool too (a delivery report lost in a crash):
    # the replay sends it again with the same id, and readers still see it once.
    from schemas.codec import default_codec

    spool.append(WS.encode(), default_codec().encode(delivered_first[0].to_record()))

    own_broker.start()
    sent, left = replay_spool(settings)
    assert (sent, left) == (51, 0)
    assert len(Spool(settings.producer.spool_dir)) == 0
    consume_until(settings, 70)
    ids = _api_ids(settings)
    assert sorted(ids) == sorted(str(e.id) for e in delivered_first + lost_without_spool)
    assert len(ids) == len(set(ids)) == 70


@contextmanager
def _hung(kafka: LocalKafka) -> Iterator[int]:
    """SIGSTOP the broker (it keeps its sockets open and answers nothing); SIGCONT it however the block ends."""
    pid = kafka.pid()
    assert pid is not None
    os.kill(pid, signal.SIGSTOP)
    try:
        yield pid
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGCONT)


def _kill_and_restart(kafka: LocalKafka, pid: int) -> None:
    """SIGKILL the broker we started (by its pid), reap it, start it again on the same data."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while kafka.pid() == pid and time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        time.sleep(0.1)
    kafka.start()


@pytest.mark.slow
def test_close_on_a_hung_broker_gives_every_event_one_outcome_and_replay_delivers_all(outage_settings,
                                                                                      own_broker):
    # As `auditlog up` shuts down: 1,000 emits while the broker hangs, close(10), the broker is then
    # killed and restarted, and the spool is replayed. Some events are in flight to the hung broker
    # at close (sent, no answer): they too must be spooled, not dropped without a report.
    settings = outage_settings
    warm = _events(5, seed=41)
    events = _events(1000, seed=42)
    reports: list[DeliveryReport] = []
    producer = AuditProducer.from_settings(settings, on_delivery=reports.append, kafka_overrides={"log_level": 0})
    for event in warm:  # connected, metadata known, idempotent producer id assigned
        producer.emit_event(event)
    assert producer.flush(30) == 0
    with _hung(own_broker) as pid:
        for event in events:
            producer.emit_event(event)
        started = time.monotonic()
        producer.close(10)
        took = time.monotonic() - started
        _kill_and_restart(own_broker, pid)
    assert took < 10 + 15, f"close(10) took {took:.1f}s"
    by_id: dict[str, list[DeliveryReport]] = {}
    for report in reports:
        by_id.setdefault(report.event_id, []).append(report)
    missing = {str(e.id) for e in warm + events} - set(by_id)
    assert not missing, f"{len(missing)} events got neither a delivery nor a spool report"
    assert all(len(r) == 1 for r in by_id.values()), "an event had more than one outcome"
    outcomes = producer.outcomes()
    assert outcomes.emitted == 1005 and outcomes.pending == 0 and outcomes.spool_failed == 0
    assert outcomes.delivered + outcomes.spooled == 1005
    assert sum(r.spooled for r in reports) == outcomes.spooled
    assert len(Spool(settings.producer.spool_dir)) == outcomes.spooled

    sent, left = replay_spool(settings)
    assert (sent, left) == (outcomes.spooled, 0)
    consume_until(settings, 1005)
    ids = _api_ids(settings)
    assert sorted(ids) == sorted(str(e.id) for e in warm + events)


def _auditlog(settings: Settings, *args: str, cwd: Path) -> subprocess.Popen[str]:
    """`auditlog …` as an operator runs it, configured by environment variables."""
    env = dict(os.environ)
    env.update({
        "AUDITLOG_KAFKA__BOOTSTRAP_SERVERS": settings.kafka.bootstrap_servers,
        "AUDITLOG_KAFKA__TOPIC": settings.kafka.topic,
        "AUDITLOG_PRODUCER__SPOOL_DIR": str(settings.producer.spool_dir),
        "AUDITLOG_PRODUCER__DELIVERY_TIMEOUT_MS": "120000",
    })
    return subprocess.Popen([sys.executable, "-m", "auditlog.cli", *args], cwd=cwd, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


@pytest.mark.slow
def test_a_replay_killed_while_the_broker_is_down_strands_nothing(outage_settings, own_broker, tmp_path):
    settings = outage_settings
    events = _events(1000, seed=51)
    from schemas.codec import default_codec

    codec = default_codec()
    spool = Spool(settings.producer.spool_dir)
    spool.append_many((WS.encode(), codec.encode(e.to_record())) for e in events)
    own_broker.stop()
    replay = _auditlog(settings, "spool", "replay", cwd=tmp_path)
    try:
        deadline = time.monotonic() + 60
        while spool.path.exists() or not list(spool.directory.glob("undelivered.replaying.*")):
            assert replay.poll() is None, f"the replay ended early: {replay.communicate()}"
            assert time.monotonic() < deadline, "the replay never claimed the spool"
            time.sleep(0.1)
        time.sleep(1.0)  # well into sending to a broker that is not there
        assert replay.poll() is None
    finally:
        replay.kill()  # SIGKILL, by the pid of the process this test started
        replay.communicate(timeout=30)
    assert replay.returncode == -signal.SIGKILL

    status = _auditlog(settings, "spool", "status", cwd=tmp_path)
    out, err = status.communicate(timeout=60)
    assert status.returncode == 0, err
    assert out.startswith("spooled events: 1000 "), out
    assert "left by killed replays 1000" in out, out

    own_broker.start()
    replay = _auditlog(settings, "spool", "replay", cwd=tmp_path)
    out, err = replay.communicate(timeout=180)
    assert replay.returncode == 0, err
    assert "replayed 1000 spooled events" in out and "0 still spooled" in out, out
    assert len(spool) == 0 and list(spool.directory.glob("undelivered.*.*")) == []
    consume_until(settings, 1000)
    assert sorted(_api_ids(settings)) == sorted(str(e.id) for e in events)
