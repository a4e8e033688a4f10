"""The consumer's side of Kafka: the group member, its messages, commits, lag, and fatal errors.

``KafkaSource`` is the only place that touches ``confluent_kafka.Consumer``; the
loop (consumer/loop.py) sees plain ``RawMessage`` tuples and this small
interface, so its logic is unit-tested with a fake (tests/unit/consumer/).

Fatal errors are the ones after which this member can never consume again:
librdkafka's own fatal errors (``error.fatal()``, e.g. a static member fenced by
another with the same ``group.instance.id``), an unknown topic, or refused
authorisation. They raise ``KafkaFatal`` from ``poll``; the loop stops and the
command exits non-zero instead of idling while the lag grows.

Lag (messages not yet stored) is measured apart from the loop, every
``lag_interval`` seconds from the broker's high watermarks and the offsets this
member committed, so it stays true while the loop is stuck.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any, Protocol

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from config.settings import ConsumerSettings, KafkaSettings
from consumer.batch import RawMessage
from consumer.errors import KafkaFatal
from consumer.metrics import CONSUMER_LAG

logger = logging.getLogger(__name__)

PartitionsCallback = Callable[[list[int]], None]

_FATAL_CODES = {
    KafkaError._FATAL,  # "Fatal error: see rd_kafka_fatal_error()", e.g. a static member fenced by another
    KafkaError._FENCED,
    KafkaError.UNKNOWN_TOPIC_OR_PART,
    KafkaError._UNKNOWN_TOPIC,
    KafkaError.TOPIC_AUTHORIZATION_FAILED,
    KafkaError.GROUP_AUTHORIZATION_FAILED,
    KafkaError.SASL_AUTHENTICATION_FAILED,
    KafkaError._AUTHENTICATION,
    KafkaError.FENCED_INSTANCE_ID,
}


class Source(Protocol):
    """What the loop needs from a group member."""

    def subscribe(self, on_assign: PartitionsCallback, on_revoke: PartitionsCallback) -> None: ...
    def poll(self, max_messages: int, timeout: float) -> list[RawMessage]: ...
    def commit(self, offsets: dict[int, int]) -> None: ...
    def lag(self) -> dict[int, int]: ...
    def close(self) -> None: ...


def consumer_config(kafka: KafkaSettings, consumer: ConsumerSettings) -> dict[str, Any]:
    """librdkafka settings: manual commits after the store, a deep prefetch, static membership if set."""
    config: dict[str, Any] = {
        "bootstrap.servers": kafka.bootstrap_servers,
        "group.id": consumer.group_id,
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "earliest",
        # A long ClickHouse outage holds the loop in retries; stay in the group meanwhile.
        "max.poll.interval.ms": 1_800_000,
        "session.timeout.ms": consumer.session_timeout_ms,
        "socket.timeout.ms": consumer.socket_timeout_ms,
        # Keep a few batches prefetched so consume() rarely waits on the broker.
        "fetch.max.bytes": 64 * 1024 * 1024,
        "max.partition.fetch.bytes": 16 * 1024 * 1024,
        "queued.min.messages": 200_000,
        "queued.max.messages.kbytes": 256 * 1024,
        "client.id": "auditlog-consumer",
    }
    if consumer.instance_id:
        config["group.instance.id"] = consumer.instance_id
    return config


class KafkaSource:
    """A confluent-kafka group member behind the ``Source`` interface."""

    def __init__(self, topic: str, config: dict[str, Any], *, lag_interval: float = 5.0) -> None:
        self._topic = topic
        self._fatal: str | None = None
        self._lock = threading.Lock()
        self._assigned: set[int] = set()
        self._committed: dict[int, int] = {}
        self._lag: dict[int, int] = {}
        self._consumer = Consumer({**config, "error_cb": self._on_error})
        self._closed = threading.Event()
        self._lag_interval = lag_interval
        self._monitor = threading.Thread(target=self._measure_lag, name="auditlog-lag", daemon=True)

    # -- Source -----------------------------------------------------------------

    def subscribe(self, on_assign: PartitionsCallback, on_revoke: PartitionsCallback) -> None:
        def assigned(_c: Consumer, tps: list[TopicPartition]) -> None:
            with self._lock:
                self._assigned.update(tp.partition for tp in tps)
            on_assign([tp.partition for tp in tps])

        def revoked(_c: Consumer, tps: list[TopicPartition]) -> None:
            on_revoke([tp.partition for tp in tps])
            with self._lock:
                for tp in tps:
                    self._assigned.discard(tp.partition)
                    self._committed.pop(tp.partition, None)
                    if self._lag.pop(tp.partition, None) is not None:
                        CONSUMER_LAG.remove(str(tp.partition))  # its new owner reports it now

        self._consumer.subscribe([self._topic], on_assign=assigned, on_revoke=revoked, on_lost=revoked)
        self._monitor.start()

    def poll(self, max_messages: int, timeout: float) -> list[RawMessage]:
        messages = self._consumer.consume(num_messages=max_messages, timeout=timeout)
        out: list[RawMessage] = []
        for message in messages:
            err = message.error()
            if err is not None:
                if err.fatal() or err.code() in _FATAL_CODES:
                    self._fatal = self._fatal or f"{err.name()}: {err.str()}"
                elif err.code() != KafkaError._PARTITION_EOF:
                    logger.warning("kafka_consume_error error=%s", err.str())
                continue
            out.append((message.partition(), message.offset(), message.key(), message.value()))  # type: ignore[arg-type]
        if self._fatal is not None:
            raise KafkaFatal(f"the Kafka consumer cannot go on: {self._fatal}")
        return out

    def commit(self, offsets: dict[int, int]) -> None:
        tps = [TopicPartition(self._topic, p, o) for p, o in offsets.items()]
        try:
            self._consumer.commit(offsets=tps, asynchronous=False)
        except KafkaException as err:
            error = err.args[0] if err.args else None
            if isinstance(error, KafkaError) and (error.fatal() or error.code() in _FATAL_CODES):
                raise KafkaFatal(f"the Kafka consumer cannot commit: {error.str()}") from err
            # Stored but not committed (e.g. the partition moved in a rebalance): the new owner
            # re-reads these messages and finds them stored. Nothing is lost.
            logger.warning("commit_failed error=%s", err)
            return
        with self._lock:
            self._committed.update(offsets)

    def lag(self) -> dict[int, int]:
        with self._lock:
            return dict(self._lag)

    def close(self) -> None:
        self._closed.set()
        try:
            self._consumer.close()
        except (KafkaException, RuntimeError) as err:
            logger.warning("consumer_close_failed error=%s", err)

    # -- internals --------------------------------------------------------------

    def _on_error(self, err: KafkaError) -> None:
        if err.fatal() or err.code() in _FATAL_CODES:
            logger.error("kafka_fatal_error code=%s error=%s", err.name(), err.str())
            self._fatal = self._fatal or f"{err.name()}: {err.str()}"
        else:
            logger.warning("kafka_client_error code=%s error=%s", err.name(), err.str())

    def _remember_committed(self, partitions: list[int]) -> None:
        try:
            committed = self._consumer.committed([TopicPartition(self._topic, p) for p in partitions], timeout=5)
        except (KafkaException, RuntimeError) as err:
            logger.warning("committed_offsets_unknown error=%s", err)
            return
        with self._lock:
            for tp in committed:
                if tp.partition in self._assigned:
                    self._committed.setdefault(tp.partition, max(tp.offset, 0))

    def _measure_lag(self) -> None:
        while not self._closed.wait(self._lag_interval):
            with self._lock:
                unknown = sorted(self._assigned - set(self._committed))
            if unknown:
                self._remember_committed(unknown)
            with self._lock:
                partitions = dict(self._committed)
            for partition in partitions:
                try:
                    low, high = self._consumer.get_watermark_offsets(
                        TopicPartition(self._topic, partition), timeout=2, cached=False
                    )
                except (KafkaException, RuntimeError):
                    continue  # the broker did not answer: keep the last known lag
                with self._lock:
                    if partition in self._committed:
                        self._lag[partition] = max(0, high - max(self._committed[partition], low))
                        CONSUMER_LAG.labels(partition=str(partition)).set(self._lag[partition])
