"""`auditlog demo` against a real broker: progress on stderr while it is a terminal, nothing otherwise.

Through Typer's CliRunner with settings from the environment, as an operator runs it. Rich decides
whether stderr is a terminal; TTY_COMPATIBLE=1 / 0 (Rich's switch) stands in for one.
"""

from __future__ import annotations

import re
import uuid

import pytest
from confluent_kafka import Consumer, TopicPartition
from typer.testing import CliRunner

from auditlog.cli import app
from config.settings import get_settings
from consumer.topics import ensure_topics

pytestmark = [pytest.mark.kafka]

COUNT = 3000


@pytest.fixture
def demo_topic(kafka_bootstrap, tmp_path, monkeypatch):
    topic = f"audit.events.cli{uuid.uuid4().hex[:10]}"
    ensure_topics(kafka_bootstrap, [topic], 2)
    monkeypatch.chdir(tmp_path)
    for name, value in {"AUDITLOG_KAFKA__BOOTSTRAP_SERVERS": kafka_bootstrap, "AUDITLOG_KAFKA__TOPIC": topic,
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
