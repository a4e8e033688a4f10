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
from consumer.engine_decode import EngineDecoder, EngineDecodeRejected
from consumer.errors import DeadLetterFailed, InvalidMessage
from consumer.metrics import BATCH_SIZE, COMMITS, CONSUMER_LAG, ENGINE_FALLBACKS
from consumer.writer import ClickHouseWriter
from schemas.catalog import load_catalog
from schemas.codec import HEADER_LENGTH, default_codec
from schemas.errors import DecodeError

logger = logging.getLogger(__name__)


RawMessage = tuple[int, int, bytes | None, bytes | None]  # partition, offset, key, value


@dataclass
class Batch:
    """Rows (or, for the engine path, raw messages) and the offset range per partition they came from."""

    rows: list[tuple[Any, ...]] = field(default_factory=list)
    raw: list[RawMessage] = field(default_factory=list)
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
                 kafka_overrides: dict[str, Any] | None = None, decoder: MessageDecoder | None = None,
                 engine: EngineDecoder | None = None) -> None:
        self._settings = settings
        self._topic = settings.kafka.topic
        self._batch_max = settings.consumer.batch_max_events
        self._batch_seconds = settings.consumer.batch_max_seconds
        self._codec = default_codec()
        self._decoder = decoder or MessageDecoder(self._codec, load_catalog())
        # With an engine decoder, messages are kept raw and decoded by ClickHouse at flush time.
        self._engine = engine
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
            # Keep a few batches prefetched so consume() rarely waits on the broker.
            "fetch.max.bytes": 64 * 1024 * 1024,
            "max.partition.fetch.bytes": 16 * 1024 * 1024,
            "queued.min.messages": 200_000,
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
        # At most one sealed batch is being stored (by a flusher thread) while the next one fills:
        # consuming and decoding overlap the engine's work, which runs without the GIL. Its offsets
        # are committed here, on the consume thread, once it is stored (a synchronous commit from
        # another thread blocks while this one sits in consume()).
        self._inflight: threading.Thread | None = None
        self._inflight_batch: Batch | None = None
        self._inflight_stored = False

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
            self._wait_inflight()
            if not self._failed:
                self._flush_open_batch()
        finally:
            self._wait_inflight()
            self._consumer.close()
            if self._engine is not None:
                try:
                    self._engine.drop()
                except Exception:
                    logger.warning("staging_drop_failed table=%s", self._engine.staging, exc_info=True)
            logger.info("consumer_stopped stored_batches=%d ok=%s", self.stored_batches, not self._failed)
        return not self._failed

    # -- loop ---------------------------------------------------------------

    def _poll_once(self) -> None:
        if self._inflight is not None and not self._inflight.is_alive():
            self._wait_inflight()
        batch = self._batch
        wanted = max(1, self._batch_max - len(batch.rows) - len(batch.raw) - batch.dead_letters)
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
            if self._engine is not None:
                batch.raw.append((partition, offset, message.key(), message.value()))
                continue
            try:
                batch.rows.append(to_row(message.value(), partition, offset))
            except InvalidMessage as invalid:
                self._dlq.send(
                    DeadLetter(self._topic, partition, offset, message.key(), message.value(), invalid.reason)
                )
                batch.dead_letters += 1
        if not batch.first:
            return
        full = len(batch.rows) + len(batch.raw) + batch.dead_letters >= self._batch_max
        if full or time.monotonic() - batch.opened_at >= self._batch_seconds:
            self._seal()

    def _seal(self) -> None:
        """Hand the open batch to a flusher thread, after the previous one is stored and committed."""
        self._wait_inflight()
        if self._failed:
            return
        batch, self._batch = self._batch, Batch()
        self._inflight_batch = batch
        self._inflight_stored = False

        def store() -> None:
            self._inflight_stored = self._store(batch)

        self._inflight = threading.Thread(target=store, name="auditlog-flush", daemon=True)
        self._inflight.start()

    def _wait_inflight(self) -> None:
        """Wait for the batch being stored; commit it if it was stored, else mark the loop failed."""
        if self._inflight is None:
            return
        self._inflight.join()
        batch = self._inflight_batch
        self._inflight = self._inflight_batch = None
        if not self._inflight_stored:
            self._failed = True
        elif batch is not None:
            self._commit(batch)

    def _flush_open_batch(self) -> None:
        """Store and commit the open batch on this thread (stop, rebalance)."""
        if self._store(self._batch):
            self._commit(self._batch)
            self._batch = Batch()
        else:
            self._failed = True

    def _store(self, batch: Batch) -> bool:
        """Store ``batch`` and its dead letters; False if it could not be (then nothing may be committed)."""
        if not batch.first:
            return True
        if batch.raw and not self._store_raw(batch):
            return False
        try:
            self._dlq.flush()
        except DeadLetterFailed:
            logger.exception("dlq_flush_failed; the batch stays uncommitted")
            return False
        return not batch.rows or self._writer.write(batch.rows, batch.dedup_token(self._topic))

    def _commit(self, batch: Batch) -> None:
        """Commit the offsets of a stored batch (consume thread only)."""
        if not batch.first:
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
            logger.debug("batch_committed messages=%d offsets=%s", batch.messages,
                         {p: last + 1 for p, last in batch.last.items()})
        BATCH_SIZE.observe(batch.messages)
        self.stored_batches += 1
        self._update_lag(batch)

    def _store_raw(self, batch: Batch) -> bool:
        """The engine path: header checks here, decode and catalog checks in ClickHouse, one insert.

        Returns False if the store kept failing until stop() (nothing may be committed).
        """
        engine = self._engine
        assert engine is not None
        groups: dict[int, list[RawMessage]] = {}
        for message in batch.raw:
            value = message[3]
            try:
                version = self._codec.writer_of(value or b"").version
            except DecodeError as err:
                self._dead_letter(message, f"{type(err).__name__}: {err}")
                batch.dead_letters += 1
                continue
            groups.setdefault(version, []).append(message)
        token = batch.dedup_token(self._topic)
        versions = {v.version: v for v in self._codec.versions}
        for version, messages in sorted(groups.items()):
            group_token = token if len(groups) == 1 else f"{token}:v{version}"
            bodies = [m[3][HEADER_LENGTH:] for m in messages if m[3] is not None]
            try:
                engine.stage(versions[version], bodies)
            except EngineDecodeRejected as why:
                ENGINE_FALLBACKS.inc()
                logger.info("engine_decode_rejected rows=%d reason=%s; decoding in Python", len(bodies), why)
                if not self._store_in_python(batch, messages, group_token):
                    return False
                continue
            staged = True

            def insert(version: int = version, bodies: list[bytes] = bodies, token: str = group_token) -> None:
                nonlocal staged
                if not staged:  # a failed attempt may have lost the staging table (a server restart)
                    engine.stage(versions[version], bodies)
                staged = False
                engine.insert_staged(version, token)

            if not self._writer.run(insert, len(bodies)):
                return False
        try:
            engine.clear()  # only frees memory early: the next stage() clears too
        except Exception:
            logger.warning("staging_clear_failed table=%s", engine.staging, exc_info=True)
        return True

    def _store_in_python(self, batch: Batch, messages: list[RawMessage], token: str) -> bool:
        rows = []
        for message in messages:
            partition, offset, _key, value = message
            try:
                rows.append(self._decoder.to_row(value, partition, offset))
            except InvalidMessage as invalid:
                self._dead_letter(message, invalid.reason)
                batch.dead_letters += 1
        try:
            self._dlq.flush()
        except DeadLetterFailed:
            logger.exception("dlq_flush_failed; the batch stays uncommitted")
            return False
        return not rows or self._writer.write(rows, token)

    def _dead_letter(self, message: RawMessage, reason: str) -> None:
        partition, offset, key, value = message
        self._dlq.send(DeadLetter(self._topic, partition, offset, key, value, reason))

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
        self._wait_inflight()
        if not self._failed:
            self._flush_open_batch()
        if self._batch.first:
            # Could not store: drop the batch; whoever gets the partitions re-reads it uncommitted.
            self._batch = Batch()
