"""close() gives every emitted event exactly one outcome, even without a broker (no services here)."""

from __future__ import annotations

import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from config.settings import Settings
from producers import AuditProducer, DeliveryReport
from producers.errors import SpoolWriteFailed
from producers.producer import ProducerOutcomes
from producers.spool import Spool
from producers.synthetic import EventGenerator


def _settings(spool_dir: Path, delivery_timeout_ms: int = 60_000) -> Settings:
    # No broker listens on this port: nothing is ever delivered.
    return Settings.model_validate({
        "kafka": {"bootstrap_servers": "127.0.0.1:9"},
        "producer": {"spool_dir": str(spool_dir), "delivery_timeout_ms": delivery_timeout_ms},
    })


def _events(n: int) -> list[Any]:
    start = datetime(2026, 3, 1, tzinfo=UTC)
    return list(EventGenerator(seed=5).history(["ws_close"], n, start, start + timedelta(days=1)))


class SilentPurge:
    """librdkafka as it was seen to behave: purge() leaves some messages without a report."""

    def __init__(self, real: Any) -> None:
        self._real = real

    def purge(self, **_kwargs: Any) -> None:
        return None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


def test_undelivered_events_are_each_spooled_and_reported_once(tmp_path):
    reports: list[DeliveryReport] = []
    producer = AuditProducer.from_settings(_settings(tmp_path), on_delivery=reports.append,
                                           kafka_overrides={"log_level": 0})
    events = _events(50)
    for event in events:
        producer.emit_event(event)
    outcomes = producer.close(0.2)
    assert (outcomes.emitted, outcomes.delivered, outcomes.spooled, outcomes.pending) == (50, 0, 50, 0)
    assert Counter(r.event_id for r in reports) == Counter(str(e.id) for e in events)
    assert all(r.spooled and not r.delivered for r in reports)
    assert len(Spool(tmp_path)) == 50
    assert producer.close() == outcomes  # a second close changes nothing


def test_deliveries_that_time_out_are_spooled_by_the_poll_thread_before_close(tmp_path):
    producer = AuditProducer.from_settings(_settings(tmp_path, delivery_timeout_ms=1000),
                                           kafka_overrides={"log_level": 0})
    for event in _events(20):
        producer.emit_event(event)
    deadline = time.monotonic() + 15
    while producer.outcomes().pending and time.monotonic() < deadline:
        time.sleep(0.1)
    assert producer.outcomes() == ProducerOutcomes(emitted=20, delivered=0, spooled=20, spool_failed=0, pending=0)
    assert len(Spool(tmp_path)) == 20
    assert producer.close(1) == producer.outcomes()


def test_messages_librdkafka_never_reports_are_spooled_from_the_producers_own_copy(tmp_path, monkeypatch):
    monkeypatch.setattr(AuditProducer, "REPORT_GRACE_SECONDS", 0.2)
    reports: list[DeliveryReport] = []
    producer = AuditProducer.from_settings(_settings(tmp_path), on_delivery=reports.append,
                                           kafka_overrides={"log_level": 0})
    producer._producer = SilentPurge(producer._producer)  # type: ignore[assignment]
    events = _events(30)
    for event in events:
        producer.emit_event(event)
    outcomes = producer.close(0.1)
    assert (outcomes.spooled, outcomes.pending) == (30, 0)
    assert sorted(r.event_id for r in reports) == sorted(str(e.id) for e in events)
    assert len(Spool(tmp_path)) == 30


def test_when_even_the_spool_fails_close_raises_with_the_count_and_the_bytes(tmp_path, caplog):
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the spool directory should be")
    reports: list[DeliveryReport] = []
    producer = AuditProducer.from_settings(_settings(blocker / "spool"), on_delivery=reports.append,
                             kafka_overrides={"log_level": 0})
    for event in _events(7):
        producer.emit_event(event)
    with pytest.raises(SpoolWriteFailed, match="7 audit event") as raised:
        producer.close(0.1)
    assert raised.value.count == 7 and len(raised.value.records) == 7
    outcomes = producer.outcomes()
    assert (outcomes.emitted, outcomes.spooled, outcomes.spool_failed, outcomes.pending) == (7, 0, 7, 0)
    assert len(reports) == 7 and not any(r.spooled or r.delivered for r in reports)
    assert "producer_closed_with_lost_events emitted=7 delivered=0 spooled=0 spool_failed=7" in caplog.text
