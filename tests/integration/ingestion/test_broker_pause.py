"""A broker that hangs (SIGSTOP) longer than the session timeout, with and without static membership:
the consumer either goes on storing or stops with a fatal error, never idles while the lag grows
(issue 13, item 2). Each test starts its own broker, so pausing it disturbs no other test."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from config.settings import Settings
from consumer import build_consumer
from consumer.topics import ensure_topics
from deploy.local_kafka import LocalKafka, LocalKafkaConfig
from tests.support.consumer_checks import make_events
from tests.support.faults import run_in_thread, wait_for
from tests.support.pipeline import produce, stored_count
from tests.support.services import _free_port

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse, pytest.mark.slow]

SESSION_MS = 6000  # the broker's group.min.session.timeout.ms


@pytest.fixture
def paused_broker_settings(settings: Settings, tmp_path: Path) -> Iterator[tuple[Settings, LocalKafka]]:
    jars = Path(os.environ.get("AUDITLOG_KAFKA__LOCAL_JARS_DIR", Path(__file__).resolve().parents[3] / "var/kafka-lib"))
    kafka = LocalKafka(LocalKafkaConfig(bootstrap_servers=f"127.0.0.1:{_free_port()}", controller_port=_free_port(),
                                        data_dir=tmp_path / "kafka", jars_dir=jars, heap="512m", partitions=2))
    kafka.start()
    try:
        s = settings.model_copy(update={"kafka": settings.kafka.model_copy(
            update={"bootstrap_servers": kafka.config.bootstrap_servers, "partitions": 2})})
        ensure_topics(s.kafka.bootstrap_servers, [s.kafka.topic, s.kafka.dlq_topic], 2)
        yield s, kafka
    finally:
        pid = kafka.pid()
        if pid:
            os.kill(pid, signal.SIGCONT)
        kafka.stop()


def _pause(kafka: LocalKafka, seconds: float) -> None:
    pid = kafka.pid()
    assert pid
    os.kill(pid, signal.SIGSTOP)
    try:
        time.sleep(seconds)
    finally:
        os.kill(pid, signal.SIGCONT)


@pytest.mark.parametrize("instance_id", ["", "auditlog-static-1"], ids=["dynamic", "static"])
def test_a_broker_paused_past_the_session_timeout_never_leaves_the_consumer_idle(paused_broker_settings,
                                                                                 instance_id):
    settings, kafka = paused_broker_settings
    settings = settings.model_copy(update={"consumer": settings.consumer.model_copy(update={
        "instance_id": instance_id, "session_timeout_ms": SESSION_MS, "lag_interval_seconds": 1.0,
        "stall_seconds": 20.0, "rejoin_max_seconds": 30.0})})
    first, second = make_events(300, seed=41), make_events(300, seed=42)
    ids = produce(settings, first)
    stop = threading.Event()
    runner = build_consumer(settings, stop)
    thread, out = run_in_thread(runner)
    wait_for(lambda: stored_count(settings) == len(first), 60, "the first events to be stored")

    _pause(kafka, SESSION_MS / 1000 + 8)
    ids += produce(settings, second)
    # Either it goes on storing, or it stops and says why: a consumer alive and idle is the failure.
    wait_for(lambda: stored_count(settings) == len(ids) or "result" in out, 90,
             "the consumer to store the new events or to stop with a fatal error")
    if "result" in out:
        result = out["result"]
        assert not result.ok and result.fatal and result.reason, result
        assert runner.health.report().state == "fatal" and not runner.health.report().ready
        # Nothing committed past stored rows: a restarted consumer (same instance id) stores the rest.
        stop2 = threading.Event()
        thread2, out2 = run_in_thread(build_consumer(settings, stop2))
        wait_for(lambda: stored_count(settings) == len(ids), 90, "a restarted consumer to store the rest")
        stop2.set()
        thread2.join(30)
        assert out2["result"].ok, out2["result"]
    else:
        assert runner.health.report().ready, runner.health.report()
        stop.set()
        thread.join(30)
        assert out["result"].ok, out["result"]
