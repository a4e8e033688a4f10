"""Reading the dead-letter topic: list what is there, replay it once the cause is fixed.

``replay`` re-publishes each dead letter's original key and value to the main
topic, where the (fixed) consumer takes them like any other message; the
event ids inside are the producer's, so a replayed event that had been stored
after all collapses like any duplicate. Its position is a consumer group on
the dead-letter topic (``<group>.dlq-replay``), committed after the main
topic acknowledged the copies, so a second run does not replay the same
letters again. One run stops at the dead-letter topic's end *as it was when
the run started*: a replayed message that still fails is dead-lettered
again behind that mark and waits for the next run, so a run cannot loop.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, Message, Producer, TopicPartition

from config.settings import Settings
from consumer.dlq import HEADER_OFFSET, HEADER_PARTITION, HEADER_REASON, HEADER_REASON_KIND, HEADER_TOPIC
from consumer.errors import DeadLetterFailed

logger = logging.getLogger(__name__)

HEADER_REPLAYED_FROM = "dlq.replayed_from"


@dataclass(frozen=True)
class DeadLetterEntry:
    """One message on the dead-letter topic, with where it came from and why it is there."""

    dlq_partition: int
    dlq_offset: int
    reason: str
    reason_kind: str
    source_topic: str
    source_partition: int
    source_offset: int
    key: bytes | None
    value: bytes | None
    dead_lettered_at: datetime | None

    @property
    def size(self) -> int:
        return len(self.value or b"")


def _entry(message: Message) -> DeadLetterEntry:
    headers: dict[str, str] = {}
    for header in message.headers() or []:
        name, raw = header[0], header[1]
        headers[name] = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw or "")
    kind, millis = message.timestamp()
    return DeadLetterEntry(
        dlq_partition=message.partition() or 0,
        dlq_offset=message.offset() or 0,
        reason=headers.get(HEADER_REASON, ""),
        reason_kind=headers.get(HEADER_REASON_KIND, ""),
        source_topic=headers.get(HEADER_TOPIC, ""),
        source_partition=int(headers.get(HEADER_PARTITION) or -1),
        source_offset=int(headers.get(HEADER_OFFSET) or -1),
        key=message.key(),
        value=message.value(),
        dead_lettered_at=datetime.fromtimestamp(millis / 1000, UTC) if kind and millis > 0 else None,
    )


def _read_until_end(consumer: Consumer, topic: str, start: dict[int, int]) -> Iterator[Message]:
    """Messages from ``start`` (per partition) up to each partition's end as of now."""
    ends: dict[int, int] = {}
    assignment = []
    for partition, offset in start.items():
        _low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)
        first = offset if offset >= 0 else _low
        if first < high:
            ends[partition] = high
            assignment.append(TopicPartition(topic, partition, offset if offset >= 0 else OFFSET_BEGINNING))
    if not assignment:
        return
    consumer.assign(assignment)
    idle = 0
    while ends and idle < 50:
        batch = consumer.consume(num_messages=1000, timeout=0.2)
        idle = 0 if batch else idle + 1
        for message in batch:
            if message.error() is not None:
                continue
            partition = message.partition() or 0
            offset = message.offset() or 0
            end = ends.get(partition)
            if end is None or offset >= end:
                continue
            yield message
            if offset + 1 >= end:
                del ends[partition]
    if ends:
        raise DeadLetterFailed(f"the dead-letter topic stopped answering before its end: partitions {sorted(ends)}")


def _partitions(consumer: Consumer, topic: str) -> list[int]:
    metadata = consumer.list_topics(topic, timeout=10).topics.get(topic)
    if metadata is None or metadata.error is not None:
        return []
    return sorted(metadata.partitions)


def _consumer(settings: Settings, group: str) -> Consumer:
    return Consumer(
        {
            "bootstrap.servers": settings.kafka.bootstrap_servers,
            "group.id": group,
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "client.id": "auditlog-dlq-tool",
        }
    )


def list_dead_letters(settings: Settings, limit: int = 100) -> list[DeadLetterEntry]:
    """The newest ``limit`` dead letters (oldest of those first). Reads only; commits nothing."""
    topic = settings.kafka.dlq_topic
    consumer = _consumer(settings, f"{settings.consumer.group_id}.dlq-list")
    try:
        start: dict[int, int] = {}
        for partition in _partitions(consumer, topic):
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)
            start[partition] = max(low, high - limit)
        entries = [_entry(m) for m in _read_until_end(consumer, topic, start)]
    finally:
        consumer.close()
    entries.sort(key=lambda e: (e.dead_lettered_at or datetime.min.replace(tzinfo=UTC), e.dlq_partition,
                                e.dlq_offset))
    return entries[-limit:] if limit else entries


def replay_group(settings: Settings) -> str:
    return f"{settings.consumer.group_id}.dlq-replay"


def replay_dead_letters(settings: Settings, *, timeout: float = 30.0,
                        on_progress: Callable[[int], None] | None = None) -> int:
    """Re-publish every dead letter not replayed before to the main topic; returns how many.

    ``on_progress(sent)`` is called after each letter is handed to the producer (``auditlog dlq
    replay`` draws its running count from it).

    Raises:
        DeadLetterFailed: the main topic did not acknowledge every copy; nothing is committed,
            so the next run replays them again (ids make a second copy harmless).
    """
    topic = settings.kafka.dlq_topic
    consumer = _consumer(settings, replay_group(settings))
    producer = Producer(
        {
            "bootstrap.servers": settings.kafka.bootstrap_servers,
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": 5,
            "client.id": "auditlog-dlq-replay",
        }
    )
    failures: list[str] = []

    def on_delivery(err: Any, _msg: Any) -> None:
        if err is not None:
            failures.append(str(err))

    sent = 0
    try:
        partitions = _partitions(consumer, topic)
        committed = consumer.committed([TopicPartition(topic, p) for p in partitions], timeout=10)
        start = {tp.partition: tp.offset for tp in committed}
        positions: dict[int, int] = {}
        for message in _read_until_end(consumer, topic, start):
            origin = f"{topic}/{message.partition()}/{message.offset()}"
            producer.produce(settings.kafka.topic, value=message.value(), key=message.key(),
                             headers=[(HEADER_REPLAYED_FROM, origin.encode())], on_delivery=on_delivery)
            producer.poll(0)
            positions[message.partition() or 0] = (message.offset() or 0) + 1
            sent += 1
            if on_progress is not None:
                on_progress(sent)
        left = producer.flush(timeout)
        if left or failures:
            raise DeadLetterFailed(f"the main topic did not take {left + len(failures)} replayed message(s): "
                                   f"{failures[:3]}")
        if positions:
            try:
                consumer.commit(offsets=[TopicPartition(topic, p, o) for p, o in positions.items()],
                                asynchronous=False)
            except KafkaException as err:
                raise DeadLetterFailed(f"replayed {sent} message(s) but could not record the position: {err}") from err
        logger.info("dlq_replayed count=%d topic=%s", sent, settings.kafka.topic)
    finally:
        consumer.close()
    return sent
