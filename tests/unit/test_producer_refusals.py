"""The producer refuses bad events at the call, and nothing half-sent reaches the queue."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from config.settings import Settings
from producers import Actor, AuditProducer, InvalidEvent, PayloadTooLarge, ProducerClosed, UnknownAction

ALEX = Actor("user", "usr_1", "alex@example.com")


@pytest.fixture
def producer(tmp_path):
    # No broker listens on this port: emit() must not care, and nothing here is delivered.
    settings = Settings.model_validate({
        "kafka": {"bootstrap_servers": "127.0.0.1:9"},
        "producer": {"spool_dir": str(tmp_path), "max_payload_bytes": 2048, "delivery_timeout_ms": 1000},
    })
    p = AuditProducer.from_settings(settings, kafka_overrides={"log_level": 0})
    p.queued = []  # type: ignore[attr-defined]
    real = p.produce_encoded

    def record(key: bytes, value: bytes, event_id: str | None = None) -> None:
        p.queued.append(event_id)  # type: ignore[attr-defined]
        real(key, value, event_id)

    p.produce_encoded = record  # type: ignore[method-assign]
    yield p
    p._producer.purge()  # drop what a test queued on purpose, then stop the background thread
    p.close(timeout=0.1)


def _emit(producer: AuditProducer, **changes):
    # Any: the refusal cases pass what the signature forbids (a None actor, an object in a payload).
    kwargs: dict[str, Any] = dict(workspace_id="ws_1", action="MEMBER_ROLE_CHANGED", actor=ALEX, target_id="usr_2",
                                  target_display="sam@example.com", before={"role": "member"}, after={"role": "admin"})
    kwargs.update(changes)
    return producer.emit(**kwargs)


@pytest.mark.parametrize(
    ("changes", "error", "message"),
    [
        ({"action": "MEMBER_PROMOTED_MAYBE"}, UnknownAction, "unknown action"),
        ({"actor": None}, InvalidEvent, "actor is missing"),
        ({"actor": Actor("user", "", "")}, InvalidEvent, "actor is missing or empty"),
        ({"occurred_at": datetime(2026, 1, 1, 12, 0)}, InvalidEvent, "naive datetime"),
        ({"workspace_id": ""}, InvalidEvent, "workspace_id is empty"),
        ({"after": {"role": object()}}, InvalidEvent, "values must be"),
        ({"after": {"blob": "x" * 5000}}, PayloadTooLarge, "over the 2048-byte limit"),
    ],
)
def test_bad_events_are_refused_at_the_call_and_nothing_is_queued(producer, changes, error, message):
    with pytest.raises(error, match=message):
        _emit(producer, **changes)
    assert producer.queued == []


def test_category_and_target_kind_come_from_the_catalog(producer):
    event_id = _emit(producer)
    assert event_id.version == 7
    assert producer.queued == [str(event_id)]


def test_an_aware_non_utc_time_is_accepted_and_stored_as_utc(producer):
    from datetime import timedelta, timezone

    _emit(producer, occurred_at=datetime(2026, 1, 1, 12, 0, tzinfo=timezone(timedelta(hours=2))))
    assert len(producer.queued) == 1


def test_emit_after_close_is_refused(producer):
    producer._producer.purge()
    producer.close(timeout=0.1)
    with pytest.raises(ProducerClosed):
        _emit(producer)


def test_now_is_used_when_no_time_is_given(producer):
    before = datetime.now(UTC)
    event_id = _emit(producer)
    ms = int(event_id.hex[:12], 16)
    assert ms >= int(before.timestamp() * 1000) - 1
