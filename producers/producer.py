"""The producer library services import to record audit events.

``emit()`` validates and encodes the event on the caller's thread (so a bad
event is refused at the call, nothing half-sent), then hands the bytes to
librdkafka's queue and returns at once: it never waits for the broker, so it
is safe in a request path and from asyncio code. A background thread serves
delivery reports. Anything the broker does not acknowledge within the
delivery timeout, or has not acknowledged when ``close()`` gives up waiting,
is appended to a local spool for ``auditlog spool replay``: every emitted event
ends up delivered or spooled, and reported either way (or, if the spool
itself cannot be written, close() raises SpoolWriteFailed with the count).
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

from confluent_kafka import KafkaError, Message, Producer

from config.settings import KafkaSettings, ProducerSettings, Settings
from producers.errors import PayloadTooLarge, ProducerClosed, SpoolWriteFailed
from producers.metrics import (
    PRODUCER_DELIVERED,
    PRODUCER_EMITTED,
    PRODUCER_FAILED,
    PRODUCER_SPOOL_FAILED,
    PRODUCER_SPOOLED,
)
from producers.spool import Spool
from schemas.catalog import Catalog, load_catalog
from schemas.codec import EventCodec, default_codec
from schemas.errors import InvalidEvent
from schemas.event import Actor, AuditEvent, PayloadMap, RequestContext, Target, utc, uuid7, validate_record

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class DeliveryReport:
    """What became of one emitted event."""

    event_id: str
    workspace_id: str
    delivered: bool
    spooled: bool
    error: str | None
    partition: int | None
    offset: int | None


@dataclass(frozen=True, slots=True)
class ProducerOutcomes:
    """Where the events handed to one producer stand: emitted = delivered + spooled + spool_failed + pending.

    ``pending`` is what is queued or in flight; it is 0 once ``close()`` returns.
    ``spool_failed`` counts events neither delivered nor spooled (close() raised
    SpoolWriteFailed for them).
    """

    emitted: int
    delivered: int
    spooled: int
    spool_failed: int
    pending: int


# An event the broker did not acknowledge: key, value, event id (None: read it from the bytes), why.
_Undelivered = tuple[bytes, bytes, str | None, str]

DeliveryCallback = Callable[[DeliveryReport], None]


def kafka_producer_config(kafka: KafkaSettings, p: ProducerSettings) -> dict[str, Any]:
    """librdkafka settings for an audit trail: nothing lost, nothing doubled by retries."""
    return {
        "bootstrap.servers": kafka.bootstrap_servers,
        "enable.idempotence": True,
        "acks": "all",
        "compression.type": p.compression,
        "linger.ms": p.linger_ms,
        "delivery.timeout.ms": p.delivery_timeout_ms,
        "queue.buffering.max.messages": p.queue_max_messages,
        "client.id": f"auditlog-producer-{p.service_name}",
    }


class AuditProducer:
    """Publishes audit events to Kafka, keyed by workspace so each workspace stays in order.

    Use as a context manager, or call ``close()``: both flush what is queued and
    spool what the broker has not acknowledged. ``on_delivery`` is called, from
    the producer's background thread or from close(), with exactly one
    DeliveryReport per emitted event; ``outcomes()`` has the counts.

    Memory: the bytes of each message are kept until its delivery report (to
    spool them even if librdkafka never reports), so while the broker is down
    the producer holds about as much as librdkafka's queue
    (``AUDITLOG_PRODUCER__QUEUE_MAX_MESSAGES`` bounds both).
    """

    # How long close() waits for the reports of purged messages before spooling from its own copy.
    REPORT_GRACE_SECONDS = 5.0

    def __init__(
        self,
        kafka: KafkaSettings,
        settings: ProducerSettings,
        *,
        on_delivery: DeliveryCallback | None = None,
        catalog: Catalog | None = None,
        codec: EventCodec | None = None,
        kafka_overrides: Mapping[str, Any] | None = None,
    ) -> None:
        """A producer for ``kafka.topic``; it needs only its own sections of the settings.

        Args:
            kafka: the brokers and the topic.
            settings: the producer's section (delivery timeout, spool, service name, limits).
        """
        self._topic = kafka.topic
        self._catalog = catalog or load_catalog()
        self._codec = codec or default_codec()
        self._max_bytes = settings.max_payload_bytes
        self._service = settings.service_name
        self._on_delivery = on_delivery
        self._spool = Spool(settings.spool_dir)
        config = kafka_producer_config(kafka, settings)
        config.update(kafka_overrides or {})
        config["error_cb"] = self._on_client_error
        self._producer = Producer(config)
        self._closed = False
        self._closing = False
        # Guards _closed against a concurrent emit: once close() starts, nothing new reaches librdkafka.
        self._emit_lock = threading.Lock()
        # Guards what follows; delivery reports run on the poll thread and, during flush, on the caller's.
        self._lock = threading.Lock()
        # The bytes of every message without a delivery report yet (one id per copy in flight).
        self._outstanding: dict[tuple[bytes, bytes], list[str | None]] = {}
        # Failed deliveries wait here for the poll thread to spool them in one write and one fsync.
        self._failed: list[_Undelivered] = []
        self._unspooled: list[_Undelivered] = []  # the spool refused them: one more try at close
        self._spool_error = ""
        self._emitted = self._delivered = self._spooled = self._spool_failed = 0
        self._stop = threading.Event()
        self._poller = threading.Thread(target=self._poll_loop, name="auditlog-producer-poll", daemon=True)
        self._poller.start()

    @classmethod
    def from_settings(cls, settings: Settings, **kwargs: Any) -> AuditProducer:
        """The producer for the product's settings (the composition root's shortcut)."""
        return cls(settings.kafka, settings.producer, **kwargs)

    # -- public API ---------------------------------------------------------

    def emit(
        self,
        *,
        workspace_id: str,
        action: str,
        actor: Actor,
        target_id: str,
        target_display: str = "",
        before: PayloadMap | None = None,
        after: PayloadMap | None = None,
        occurred_at: datetime | None = None,
        context: RequestContext | None = None,
        event_id: uuid.UUID | None = None,
    ) -> uuid.UUID:
        """Record one action; returns the event id at once, without waiting for the broker.

        Category and target kind come from the action catalog.

        Raises:
            UnknownAction: ``action`` is not in schemas/catalog.json.
            InvalidEvent: an empty workspace or actor, a naive datetime, a payload
                value the schema cannot carry.
            PayloadTooLarge: the encoded event is over the configured limit.
            ProducerClosed: the producer was closed.
        """
        if self._closed:
            raise ProducerClosed()
        spec = self._catalog.action(action)
        if actor is None or not isinstance(actor, Actor):
            raise InvalidEvent("actor is missing: pass an Actor(kind, id, display) naming who acted")
        when = utc(occurred_at) if occurred_at is not None else datetime.now(UTC)
        if context is None:
            context = RequestContext(service=self._service)
        elif context.service is None:
            context = RequestContext(context.ip, context.user_agent, context.request_id, self._service)
        event = AuditEvent(
            id=event_id or uuid7(),
            workspace_id=workspace_id,
            occurred_at=when,
            action=spec.name,
            category=spec.category,
            actor=actor,
            target=Target(spec.target_kind, target_id, target_display or target_id),
            before=before,
            after=after,
            context=context,
        )
        return self.emit_event(event)

    def emit_event(self, event: AuditEvent) -> uuid.UUID:
        """Emit a fully built event (its category and target kind must match the catalog)."""
        if self._closed:
            raise ProducerClosed()
        record = event.to_record()
        validate_record(record, self._catalog)
        try:
            value = self._codec.encode(record)
        except (ValueError, TypeError, AttributeError) as err:
            raise InvalidEvent(f"the event cannot be serialised with the Avro schema: {err}") from err
        if len(value) > self._max_bytes:
            raise PayloadTooLarge(len(value), self._max_bytes)
        self.produce_encoded(event.workspace_id.encode(), value, str(event.id))
        PRODUCER_EMITTED.inc()
        return event.id

    def produce_encoded(self, key: bytes, value: bytes, event_id: str | None = None) -> None:
        """Queue an already-encoded message; spools it at once if the local queue is full.

        Until its delivery report arrives, the producer keeps its own reference
        to the bytes: whatever librdkafka still holds at the end of ``close()``
        is spooled from that copy, so no event can vanish without an outcome.

        Raises:
            ProducerClosed: the producer was closed.
            SpoolWriteFailed: the local queue is full and the spool cannot be
                written: the event was not accepted.
        """
        entry = (key, value)
        with self._emit_lock:
            if self._closed:
                raise ProducerClosed()
            with self._lock:
                self._outstanding.setdefault(entry, []).append(event_id)
                self._emitted += 1
            try:
                self._producer.produce(self._topic, value=value, key=key, on_delivery=self._on_report)
            except BufferError:
                # The local queue is full (broker down for long, or a burst): never block the caller.
                self._untrack(entry, accepted=True)
                self._spool_now(key, value, event_id)
            except BaseException:
                self._untrack(entry, accepted=False)
                raise

    def flush(self, timeout: float = 10.0) -> int:
        """Wait up to ``timeout`` seconds for queued events; returns how many are still queued."""
        left = int(self._producer.flush(timeout))
        self._spool_failed_deliveries()
        return left

    def close(self, timeout: float = 30.0) -> ProducerOutcomes:
        """Flush for up to ``timeout`` seconds, then spool everything the broker has not acknowledged.

        After close() returns, every emitted event has exactly one outcome:
        delivered, or in the spool. Messages still queued or in flight (sent to
        a broker that has not answered) are purged and spooled; the producer is
        idempotent and the consumer dedups by id, so a spooled event that did
        reach the broker after all is harmless, while a dropped one would be a
        hole in the audit log. If librdkafka does not report a message within a
        short grace period, the bytes are spooled from the producer's own copy.

        Returns:
            The final counts (``pending`` is 0).

        Raises:
            SpoolWriteFailed: events that were neither delivered nor spoolable
                (disk full, permissions); the count is logged and the bytes are on
                the exception.
        """
        with self._emit_lock:
            if self._closed:
                return self.outcomes()
            self._closed = True
        started = time.monotonic()
        self._producer.flush(timeout)
        if self._outstanding_count():
            self._closing = True  # purge reports are summed up in one line, not logged one by one
            self._producer.purge(in_queue=True, in_flight=True)
            deadline = time.monotonic() + self.REPORT_GRACE_SECONDS
            while self._outstanding_count() and time.monotonic() < deadline:
                self._producer.poll(0.05)
        self._stop.set()
        self._poller.join(timeout=5)
        self._spool_failed_deliveries()
        with self._lock:
            leftovers = [(k, v, eid, "no delivery report before close")
                         for (k, v), ids in self._outstanding.items() for eid in ids]
            self._outstanding.clear()
        if leftovers:
            logger.error("producer_reports_missing count=%d action=spooled_from_own_copy", len(leftovers))
            self._dispose_undelivered(leftovers)
        lost = self._retry_unspooled()
        outcomes = self.outcomes()
        counts = (outcomes.emitted, outcomes.delivered, outcomes.spooled, outcomes.spool_failed,
                  time.monotonic() - started)
        if lost:
            logger.error("producer_closed_with_lost_events emitted=%d delivered=%d spooled=%d spool_failed=%d "
                         "took_s=%.1f", *counts)
            raise SpoolWriteFailed(len(lost), self._spool.path, self._spool_error, [(k, v) for k, v, _, _ in lost])
        if outcomes.spooled:
            logger.warning("producer_closed_with_undelivered emitted=%d delivered=%d spooled=%d spool_failed=%d "
                           "took_s=%.1f", *counts)
        else:
            logger.info("producer_closed emitted=%d delivered=%d spooled=%d spool_failed=%d took_s=%.1f", *counts)
        return outcomes

    def outcomes(self) -> ProducerOutcomes:
        """This producer's counts so far: emitted = delivered + spooled + spool_failed + pending."""
        with self._lock:
            settled = self._delivered + self._spooled + self._spool_failed
            return ProducerOutcomes(self._emitted, self._delivered, self._spooled, self._spool_failed,
                                    self._emitted - settled)

    def __enter__(self) -> AuditProducer:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- internals ----------------------------------------------------------

    def _poll_loop(self) -> None:
        while not self._stop.is_set():
            self._producer.poll(0.1)
            self._spool_failed_deliveries()

    def _outstanding_count(self) -> int:
        with self._lock:
            return len(self._outstanding)

    def _untrack(self, entry: tuple[bytes, bytes], *, accepted: bool) -> str | None:
        with self._lock:
            ids = self._outstanding[entry]
            event_id = ids.pop()
            if not ids:
                del self._outstanding[entry]
            if not accepted:
                self._emitted -= 1
        return event_id

    def _spool_now(self, key: bytes, value: bytes, event_id: str | None) -> None:
        """The local queue is full: spool on the caller's thread, or refuse the event if even that fails."""
        try:
            self._spool.append(key, value)
        except SpoolWriteFailed:
            with self._lock:
                self._emitted -= 1
            raise
        with self._lock:
            self._spooled += 1
        PRODUCER_SPOOLED.inc()
        logger.warning("producer_queue_full_spooled event_id=%s", event_id)
        self._report(DeliveryReport(self._name(event_id, value), key.decode(), False, True, "local queue full",
                                    None, None))

    def _on_report(self, err: KafkaError | None, msg: Message) -> None:
        """The one delivery callback of every message (no closure per event)."""
        key, value = msg.key() or b"", msg.value() or b""
        entry = (key, value)
        with self._lock:
            if entry not in self._outstanding:
                # Already spooled from our own copy at close: its outcome is settled.
                logger.warning("producer_late_report delivered=%s", err is None)
                return
            ids = self._outstanding[entry]
            event_id = ids.pop()
            if not ids:
                del self._outstanding[entry]
            if err is None:
                self._delivered += 1
        if err is None:
            PRODUCER_DELIVERED.inc()
            if self._on_delivery is not None:
                self._report(DeliveryReport(self._name(event_id, value), key.decode(), True, False, None,
                                            msg.partition(), msg.offset()))
            return
        PRODUCER_FAILED.inc()
        with self._lock:
            self._failed.append((key, value, event_id, err.str()))

    def _spool_failed_deliveries(self) -> None:
        """Spool the failed deliveries of the last poll together: one fsync, not one per event."""
        with self._lock:
            batch, self._failed = self._failed, []
        if batch:
            self._dispose_undelivered(batch)

    def _dispose_undelivered(self, records: list[_Undelivered]) -> None:
        """Spool what the broker did not acknowledge; on a spool failure keep it for one retry at close."""
        try:
            self._spool.append_many((k, v) for k, v, _, _ in records)
        except SpoolWriteFailed as err:
            with self._lock:
                self._unspooled.extend(records)
            self._spool_error = err.reason
            logger.error("producer_spool_failed count=%d path=%s error=%s", len(records), err.path, err.reason)
            return
        with self._lock:
            self._spooled += len(records)
        PRODUCER_SPOOLED.inc(len(records))
        for key, value, event_id, reason in records:
            if not self._closing:
                logger.error("producer_delivery_failed_spooled event_id=%s error=%s", self._name(event_id, value),
                             reason)
            self._report(DeliveryReport(self._name(event_id, value), key.decode(), False, True, reason, None, None))

    def _retry_unspooled(self) -> list[_Undelivered]:
        """At close: one more try to spool what failed to spool earlier; returns what is lost."""
        with self._lock:
            pending, self._unspooled = self._unspooled, []
        if not pending:
            return []
        self._dispose_undelivered(pending)
        with self._lock:
            lost, self._unspooled = self._unspooled, []
            self._spool_failed += len(lost)
        PRODUCER_SPOOL_FAILED.inc(len(lost))
        for key, value, event_id, _reason in lost:
            self._report(DeliveryReport(self._name(event_id, value), key.decode(), False, False,
                                        f"not delivered and not spooled: {self._spool_error}", None, None))
        return lost

    def _name(self, event_id: str | None, value: bytes) -> str:
        """The event id for reports and log lines (decoded from the bytes when the caller gave none)."""
        if event_id is not None:
            return event_id
        try:
            return str(self._codec.decode(value)["id"])
        except Exception:  # only names the event; its bytes are handled either way
            return "unknown"

    def _report(self, report: DeliveryReport) -> None:
        if self._on_delivery is None:
            return
        try:
            self._on_delivery(report)
        except Exception:
            logger.exception("producer_delivery_callback_raised event_id=%s", report.event_id)

    @staticmethod
    def _on_client_error(err: KafkaError) -> None:
        logger.warning("producer_client_error code=%s error=%s", err.code(), err.str())
