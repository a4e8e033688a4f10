"""Hand-made Kafka messages: what a buggy or hostile producer could send, bypassing the producer's checks."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from typing import Any

from confluent_kafka import Producer

from config.settings import Settings
from consumer import build_consumer
from schemas.codec import default_codec
from schemas.event import Actor, AuditEvent, Target, uuid7
from tests.support.faults import run_in_thread, wait_for

CODEC = default_codec()


def record(workspace: str = "ws_raw", **changes: Any) -> dict[str, Any]:
    """A valid Avro record (as the producer would build it), with ``changes`` applied unchecked."""
    at = changes.pop("occurred_at", datetime(2026, 3, 1, 12, 0, tzinfo=UTC))
    event = AuditEvent(uuid7(int(at.timestamp() * 1000)) if at.year >= 1970 else uuid7(), workspace, at,
                       "MEMBER_ROLE_CHANGED", "members", Actor("user", "usr_1", "alex@example.com"),
                       Target("user", "usr_2", "sam@example.com"), {"role": "member"}, {"role": "admin"})
    out = event.to_record()
    out["occurred_at"] = at
    out.update(changes)
    return out


def encode(rec: dict[str, Any]) -> bytes:
    return CODEC.encode(rec)


def with_bytes(rec: dict[str, Any], placeholder: str, replacement: bytes) -> bytes:
    """The encoding of ``rec`` with the UTF-8 bytes of ``placeholder`` replaced by ``replacement`` (same length),
    e.g. to put text that is not UTF-8 where the schema says string."""
    encoded = encode(rec)
    raw = placeholder.encode()
    assert len(raw) == len(replacement) and encoded.count(raw) == 1, "placeholder must be unique, same length"
    return encoded.replace(raw, replacement)


def send_raw(settings: Settings, messages: list[tuple[bytes, bytes]]) -> list[tuple[int, int]]:
    """Produce raw (key, value) pairs in order; returns each one's (partition, offset)."""
    where: dict[int, tuple[int, int]] = {}
    producer = Producer({"bootstrap.servers": settings.kafka.bootstrap_servers, "enable.idempotence": True})
    for i, (key, value) in enumerate(messages):
        def delivered(err: Any, msg: Any, i: int = i) -> None:
            assert err is None, err
            where[i] = (msg.partition(), msg.offset())

        producer.produce(settings.kafka.topic, key=key, value=value, on_delivery=delivered)
    assert producer.flush(30) == 0
    return [where[i] for i in range(len(messages))]


def consume_until_caught_up(settings: Settings, timeout: float = 90.0) -> None:
    """Run a consumer until the group committed every message of the topic, then stop it; it must end ok."""
    from tests.support.consumer_checks import caught_up

    stop = threading.Event()
    runner = build_consumer(settings, stop)
    thread, out = run_in_thread(runner)
    try:
        wait_for(lambda: caught_up(settings) or "result" in out, timeout, "the consumer to catch up")
    finally:
        stop.set()
        thread.join(30)
    assert out["result"].ok, out["result"].reason
    time.sleep(0)  # keep the signature obvious: nothing asynchronous left running
