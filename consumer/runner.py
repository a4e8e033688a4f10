"""The consumer loop: Kafka → batch → one ClickHouse insert → commit.

Contract:
- A batch closes at ``batch_max_events`` messages or ``batch_max_seconds``
  after its first message, whichever comes first.
- Offsets are committed only after ClickHouse acknowledged the insert and the
  dead-letter topic acknowledged the batch's poison messages.
- While ClickHouse fails, the loop takes no new messages and retries the same
  batch with the same deduplication token, with exponential backoff.
- Before partitions are revoked in a rebalance, the open batch is stored and
  committed.
- ``stop()`` (SIGTERM in ``auditlog consume``) finishes the open batch,
  commits it and returns.
- A crash anywhere re-delivers at most the uncommitted batch; producer ids,
  the ReplacingMergeTree and the duplicate-collapsing reads make that harmless.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from auditlog.settings import Settings
from consumer.decode import MessageDecoder
from consumer.dlq import DeadLetter, DeadLetterWriter
from consumer.errors import DeadLetterFailed, InvalidMessage
from consumer.metrics import BATCH_SIZE, COMMITS, CONSUMER_LAG
from consumer.writer import ClickHouseWriter
from schemas.catalog import load_catalog
from schemas.codec import default_codec

logger = logging.getLogger(__name__)


@dataclass
class Batch:
    """Rows and the offset range per partition they came from."""

    rows: list[tuple[Any, ...]] = field(default_factory=list)
    first: dict[int, int] = field(default_factory=dict)
    last: dict[int, int] = field(default_factory=dict)
    dead_letters: int = 0
    opened_at: float = 0.0

    def add_offset(self, partition: int, offset: int) -> None:
        if partition not in self.first:
            self.first[partition] = offset
        self.last[partition] = offset

    @property
    def messages(self) -> int:
        return sum(self.last[p] - self.first[p] + 1 for p in self.last)

    def dedup_token(self, topic: str) -> str:
        """The same for the same messages, so a retried insert is dropped by the engine."""
        ranges = ",".join(f"{p}:{self.first[p]}-{self.last[p]}" for p in sorted(self.first))
        return hashlib.sha256(f"{topic}|{ranges}".encode()).hexdigest()[:32]


class ConsumerRunner:
    """Runs the consume loop until ``stop()``; see the module docstring for the guarantees."""

    def __init__(self, settings: Settings, writer: ClickHouseWriter, *, stop: threading.Event | None = None,
                 kafka_overrides: dict[str, Any] | None = None, decoder: MessageDecoder | None = None) -> None:
        self._settings = settings
        self._topic = settings.kafka.topic
        self._batch_max = settings.consumer.batch_max_events
        self._batch_seconds = settings.consumer.batch_max_seconds
        self._decoder = decoder or MessageDecoder(default_codec(), load_catalog())
        self._writer = writer
        self._stop = stop or threading.Event()
        self._dlq = DeadLetterWriter(settings.kafka.bootstrap_servers, settings.kafka.dlq_topic)
        config: dict[str, Any] = {
            "bootstrap.servers": settings.kafka.bootstrap_servers,
            "group.id": settings.consumer.group_id,
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "auto.offset.reset": "earliest",
            # A long ClickHouse outage holds the loop in retries; stay in the group meanwhile.
            "max.poll.interval.ms": 1_800_000,
            "session.timeout.ms": settings.consumer.session_timeout_ms,
            "fetch.max.bytes": 64 * 1024 * 1024,
            "queued.max.messages.kbytes": 256 * 1024,
            "client.id": "auditlog-consumer",
        }
        if settings.consumer.instance_id:
            config["group.instance.id"] = settings.consumer.instance_id
        config.update(kafka_overrides or {})
        self._consumer = Consumer(config)
        self._batch = Batch()
        self._failed = False
        self.stored_batches = 0

    @property
    def stop_event(self) -> threading.Event:
        return self._stop

    def stop(self) -> None:
        """Ask the loop to finish the open batch, commit and return."""
        self._stop.set()

    def run(self) -> bool:
        """Consume until stopped; returns False if the last batch could not be stored."""
        self._consumer.subscribe([self._topic], on_assign=self._on_assign, on_revoke=self._on_revoke)
        logger.info("consumer_started topic=%s group=%s", self._topic, self._settings.consumer.group_id)
        try:
            while not self._stop.is_set():
                self._poll_once()
                if self._failed:
                    break
            if not self._failed:
                self._flush()
        finally:
            self._consumer.close()
            logger.info("consumer_stopped stored_batches=%d ok=%s", self.stored_batches, not self._failed)
        return not self._failed

    # -- loop ---------------------------------------------------------------

    def _poll_once(self) -> None:
        batch = self._batch
        wanted = max(1, self._batch_max - len(batch.rows) - batch.dead_letters)
        timeout = 0.2 if not batch.first else max(0.0, batch.opened_at + self._batch_seconds - time.monotonic())
        messages = self._consumer.consume(num_messages=min(wanted, 10_000), timeout=min(timeout, 0.2))
        to_row = self._decoder.to_row
        for message in messages:
            err = message.error()
            if err is not None:
                if err.code() != KafkaError._PARTITION_EOF:
                    logger.warning("kafka_consume_error error=%s", err.str())
                continue
            if not batch.first:
                batch.opened_at = time.monotonic()
            partition: int = message.partition()  # type: ignore[assignment]
            offset: int = message.offset()  # type: ignore[assignment]
            batch.add_offset(partition, offset)
            try:
                batch.rows.append(to_row(message.value(), partition, offset))
            except InvalidMessage as invalid:
                self._dlq.send(
                    DeadLetter(self._topic, partition, offset, message.key(), message.value(), invalid.reason)
                )
                batch.dead_letters += 1
        if not batch.first:
            return
        full = len(batch.rows) + batch.dead_letters >= self._batch_max
        if full or time.monotonic() - batch.opened_at >= self._batch_seconds:
            self._flush()

    def _flush(self) -> None:
        """Store the open batch, then commit its offsets. Leaves the batch open on failure."""
        batch = self._batch
        if not batch.first:
            return
        try:
            self._dlq.flush()
        except DeadLetterFailed:
            logger.exception("dlq_flush_failed; the batch stays uncommitted")
            self._failed = True
            return
        if batch.rows and not self._writer.write(batch.rows, batch.dedup_token(self._topic)):
            self._failed = True
            return
        offsets = [TopicPartition(self._topic, p, last + 1) for p, last in batch.last.items()]
        try:
            self._consumer.commit(offsets=offsets, asynchronous=False)
        except KafkaException as err:
            # Stored but not committed (e.g. the partition moved in a rebalance): the new owner
            # re-reads these messages and the dedup collapses them. Nothing is lost.
            logger.warning("commit_failed error=%s", err)
        else:
            COMMITS.inc()
        BATCH_SIZE.observe(batch.messages)
        self.stored_batches += 1
        self._update_lag(batch)
        self._batch = Batch()

    def _update_lag(self, batch: Batch) -> None:
        for partition, last in batch.last.items():
            try:
                _low, high = self._consumer.get_watermark_offsets(
                    TopicPartition(self._topic, partition), cached=True
                )
            except KafkaException:
                continue
            if high >= 0:
                CONSUMER_LAG.labels(partition=str(partition)).set(max(0, high - last - 1))

    # -- rebalance callbacks ---------------------------------------------------

    def _on_assign(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        logger.info("partitions_assigned partitions=%s", [p.partition for p in partitions])

    def _on_revoke(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        logger.info("partitions_revoked partitions=%s", [p.partition for p in partitions])
        self._flush()
        if self._batch.first:
            # Could not store: drop the batch; whoever gets the partitions re-reads it uncommitted.
            self._batch = Batch()
