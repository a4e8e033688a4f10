"""The dead-letter topic: poison messages with the reason and where they came from.

Headers: ``dlq.reason``, ``dlq.reason_kind``, ``dlq.source.topic``,
``dlq.source.partition``, ``dlq.source.offset``; the value and key are the
original bytes, untouched, so a fixed consumer can replay them.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any

from confluent_kafka import Producer

from consumer.errors import DeadLetterFailed
from consumer.metrics import DLQ_MESSAGES

logger = logging.getLogger(__name__)


class _Closed:
    def produce(self, *_args: object, **_kwargs: object) -> None:
        raise DeadLetterFailed("the dead-letter writer is closed")

    def poll(self, _timeout: float = 0) -> int:
        return 0

    def flush(self, _timeout: float = 0) -> int:
        return 0


_CLOSED: Any = _Closed()

HEADER_REASON = "dlq.reason"
HEADER_REASON_KIND = "dlq.reason_kind"
HEADER_TOPIC = "dlq.source.topic"
HEADER_PARTITION = "dlq.source.partition"
HEADER_OFFSET = "dlq.source.offset"


@dataclass(frozen=True)
class DeadLetter:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    reason: str

    @property
    def reason_kind(self) -> str:
        return self.reason.split(":", 1)[0] if ":" in self.reason else self.reason

    def headers(self) -> list[tuple[str, str | bytes | None]]:
        return [
            (HEADER_REASON, self.reason.encode()),
            (HEADER_REASON_KIND, self.reason_kind.encode()),
            (HEADER_TOPIC, self.topic.encode()),
            (HEADER_PARTITION, str(self.partition).encode()),
            (HEADER_OFFSET, str(self.offset).encode()),
        ]


class DeadLetterWriter:
    """Sends poison messages to the DLQ; ``flush()`` must succeed before their offsets are committed."""

    def __init__(self, bootstrap_servers: str, dlq_topic: str) -> None:
        self._topic = dlq_topic
        self._producer: Any = Producer(
            {
                "bootstrap.servers": bootstrap_servers,
                "enable.idempotence": True,
                "acks": "all",
                "linger.ms": 5,
                "client.id": "auditlog-dlq",
            }
        )
        self._failures: list[str] = []
        # send() runs on the consume thread, flush() on the flusher thread.
        self._lock = threading.Lock()

    def send(self, letter: DeadLetter) -> None:
        def on_delivery(err, _msg):  # type: ignore[no-untyped-def]
            if err is not None:
                with self._lock:
                    self._failures.append(err.str())

        self._producer.produce(
            self._topic, value=letter.value, key=letter.key, headers=letter.headers(), on_delivery=on_delivery
        )
        self._producer.poll(0)
        DLQ_MESSAGES.labels(reason_kind=letter.reason_kind).inc()
        logger.warning(
            "dead_lettered topic=%s partition=%d offset=%d reason=%s",
            letter.topic, letter.partition, letter.offset, letter.reason,
        )

    def close(self) -> None:
        """Let the client go (its librdkafka threads stop once nothing refers to it)."""
        self._producer.flush(5)
        self._producer = _CLOSED

    def flush(self, timeout: float = 30.0) -> None:
        """Wait for every sent letter; raises DeadLetterFailed if any was not acknowledged."""
        remaining = self._producer.flush(timeout)
        with self._lock:
            failures, self._failures = self._failures, []
        if remaining or failures:
            raise DeadLetterFailed(
                f"the dead-letter topic did not take {remaining + len(failures)} message(s): {failures[:3]}"
            )
