"""The long commands against a real broker (`demo`, `spool replay`, `dlq replay`): progress on stderr while
it is a terminal, nothing otherwise, and stdout is the same result either way.

Through Typer's CliRunner with settings from the environment, as an operator runs it. Rich decides
whether stderr is a terminal; TTY_COMPATIBLE=1 / 0 (Rich's switch) stands in for one.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from typer.testing import CliRunner

from auditlog.cli import app
from config.settings import get_settings
from consumer.topics import ensure_topics
from producers.spool import Spool
from producers.synthetic import EventGenerator
from schemas.codec import default_codec

pytestmark = [pytest.mark.kafka]

COUNT = 3000


@pytest.fixture
def demo_topic(kafka_bootstrap, tmp_path, monkeypatch):
    tag = uuid.uuid4().hex[:10]
    topic = f"audit.events.cli{tag}"
    ensure_topics(kafka_bootstrap, [topic, f"{topic}.dlq"], 2)
    monkeypatch.chdir(tmp_path)
    for name, value in {"AUDITLOG_KAFKA__BOOTSTRAP_SERVERS": kafka_bootstrap, "AUDITLOG_KAFKA__TOPIC": topic,
                        "AUDITLOG_KAFKA__DLQ_TOPIC": f"{topic}.dlq", "AUDITLOG_CONSUMER__GROUP_ID": f"cli-{tag}",
                        "AUDITLOG_PRODUCER__SPOOL_DIR": str(tmp_path / "spool")}.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    yield topic
    get_settings.cache_clear()


def _messages(bootstrap: str, topic: str) -> int:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"count-{uuid.uuid4().hex}"})
    try:
        return sum(consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in range(2))
    finally:
        consumer.close()


@pytest.mark.parametrize(("tty", "quiet", "drawn"), [("1", False, True), ("1", True, False), ("0", False, False)],
                         ids=["terminal", "terminal-quiet", "pipe"])
def test_demo_draws_progress_on_stderr_only_on_a_terminal_without_quiet(demo_topic, kafka_bootstrap, monkeypatch,
                                                                        tty, quiet, drawn):
    monkeypatch.setenv("TTY_COMPATIBLE", tty)
    args = ["demo", "--workspaces", "ws_a,ws_b", "--count", str(COUNT), "--days", "3"] + (["--quiet"] if quiet else [])
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert result.stdout == f"emitted {COUNT} events into ws_a, ws_b\n"  # stdout is only the result
    if drawn:
        assert "emitting events" in result.stderr and f"{COUNT}/{COUNT}" in result.stderr
        assert re.search(r"[0-9][0-9,]*/s", result.stderr), result.stderr  # a measured rate
    else:
        assert "emitting events" not in result.stderr and "\x1b[" not in result.stderr
    assert _messages(kafka_bootstrap, demo_topic) == COUNT


def test_spool_replay_draws_its_bar_on_stderr_and_says_what_it_sent(demo_topic, kafka_bootstrap, tmp_path,
                                                                    monkeypatch):
    codec = default_codec()
    events = list(EventGenerator(seed=3).history(["ws_a"], 1500, *_window()))
    Spool(tmp_path / "spool").append_many((b"ws_a", codec.encode(e.to_record())) for e in events)
    monkeypatch.setenv("TTY_COMPATIBLE", "1")
    result = CliRunner().invoke(app, ["spool", "replay"])
    assert result.exit_code == 0, result.output
    assert result.stdout == "replayed 1500 spooled events from 1 file(s); 0 still spooled\n"
    assert "replaying spooled events" in result.stderr and "1500/1500" in result.stderr
    assert _messages(kafka_bootstrap, demo_topic) == 1500


def test_dlq_replay_draws_a_running_count_only_on_a_terminal(demo_topic, kafka_bootstrap, monkeypatch):
    producer = Producer({"bootstrap.servers": kafka_bootstrap})
    for i in range(400):
        producer.produce(f"{demo_topic}.dlq", value=f"poison {i}".encode(), key=b"ws_a")
    assert producer.flush(30) == 0
    del producer  # librdkafka's handle goes now, not when the broker stops at the session's end
    monkeypatch.setenv("TTY_COMPATIBLE", "1")
    first = CliRunner().invoke(app, ["dlq", "replay"])
    assert first.exit_code == 0, first.output
    assert first.stdout == f"replayed 400 dead letter(s) from {demo_topic}.dlq to {demo_topic}\n"
    assert "replaying dead letters" in first.stderr and "400" in first.stderr
    assert _messages(kafka_bootstrap, demo_topic) == 400
    again = CliRunner().invoke(app, ["dlq", "replay", "--quiet"])  # already replayed: nothing, and quiet
    assert (again.exit_code, again.stdout) == (0, f"replayed 0 dead letter(s) from {demo_topic}.dlq to {demo_topic}\n")
    assert "replaying dead letters" not in again.stderr


def _window() -> tuple[datetime, datetime]:
    start = datetime(2026, 2, 1, tzinfo=UTC)
    return start, start + timedelta(days=5)
