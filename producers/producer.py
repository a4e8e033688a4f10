"""The producer library services import to record audit events.

``emit()`` validates and encodes the event on the caller's thread (so a bad
event is refused at the call, nothing half-sent), then hands the bytes to
librdkafka's queue and returns at once: it never waits for the broker, so it
is safe in a request path and from asyncio code. A background thread serves
delivery reports. Anything the broker does not acknowledge within the
delivery timeout is appended to a local spool for ``auditlog spool replay``:
events are reported, never silently dropped.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

from confluent_kafka import KafkaError, Message, Producer

from auditlog.settings import Settings
from producers.errors import PayloadTooLarge, ProducerClosed
from producers.metrics import PRODUCER_DELIVERED, PRODUCER_EMITTED, PRODUCER_FAILED, PRODUCER_SPOOLED
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


DeliveryCallback = Callable[[DeliveryReport], None]


def kafka_producer_config(settings: Settings) -> dict[str, Any]:
    """librdkafka settings for an audit trail: nothing lost, nothing doubled by retries."""
    p = settings.producer
    return {
        "bootstrap.servers": settings.kafka.bootstrap_servers,
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

    Use as a context manager, or call ``close()``: both flush what is queued.
    ``on_delivery`` is called from the producer's background thread with a
    DeliveryReport for every emitted event.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        on_delivery: DeliveryCallback | None = None,
        catalog: Catalog | None = None,
        codec: EventCodec | None = None,
        kafka_overrides: Mapping[str, Any] | None = None,
    ) -> None:
        self._settings = settings
        self._topic = settings.kafka.topic
        self._catalog = catalog or load_catalog()
        self._codec = codec or default_codec()
        self._max_bytes = settings.producer.max_payload_bytes
        self._service = settings.producer.service_name
        self._on_delivery = on_delivery
        self._spool = Spool(settings.producer.spool_dir)
        config = kafka_producer_config(settings)
        config.update(kafka_overrides or {})
        config["error_cb"] = self._on_client_error
        self._producer = Producer(config)
        self._closed = False
        self._stop = threading.Event()
        self._poller = threading.Thread(target=self._poll_loop, name="auditlog-producer-poll", daemon=True)
        self._poller.start()

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

    def produce_encoded(self, key: bytes, value: bytes, event_id: str) -> None:
        """Queue an already-encoded message; spools it if the local queue is full."""
        try:
            # Without a report hook one shared callback serves every message: no closure per event.
            callback = self._delivered if self._on_delivery is None else self._delivery_handler(event_id, key, value)
            self._producer.produce(self._topic, value=value, key=key, on_delivery=callback)
        except BufferError:
            # The local queue is full (broker down for long, or a burst): never block the caller.
            self._spool.append(key, value)
            PRODUCER_SPOOLED.inc()
            logger.warning("producer_queue_full_spooled event_id=%s", event_id)
            self._report(DeliveryReport(event_id, key.decode(), False, True, "local queue full", None, None))

    def flush(self, timeout: float = 10.0) -> int:
        """Wait up to ``timeout`` seconds for queued events; returns how many are still queued."""
        return int(self._producer.flush(timeout))

    def close(self, timeout: float = 30.0) -> None:
        """Flush, then stop the background thread. Events still queued after ``timeout`` are spooled."""
        if self._closed:
            return
        self._closed = True
        remaining = self.flush(timeout)
        if remaining:
            # Purging fires the delivery callbacks with an error, which spools each message.
            self._producer.purge(in_queue=True, in_flight=False)
            self._producer.flush(5.0)
            logger.warning("producer_closed_with_undelivered spooled=%d", remaining)
        self._stop.set()
        self._poller.join(timeout=5)

    def __enter__(self) -> AuditProducer:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    @property
    def spool(self) -> Spool:
        return self._spool

    def __len__(self) -> int:
        return len(self._producer)

    # -- internals ----------------------------------------------------------

    def _poll_loop(self) -> None:
        while not self._stop.is_set():
            self._producer.poll(0.1)

    def _delivery_handler(
        self, event_id: str, key: bytes, value: bytes
    ) -> Callable[[KafkaError | None, Message], None]:
        def on_delivery(err: KafkaError | None, msg: Message) -> None:
            if err is None:
                PRODUCER_DELIVERED.inc()
                self._report(DeliveryReport(event_id, key.decode(), True, False, None, msg.partition(), msg.offset()))
                return
            self._spool_undelivered(err, key, value, event_id)
            self._report(DeliveryReport(event_id, key.decode(), False, True, err.str(), None, None))

        return on_delivery

    def _delivered(self, err: KafkaError | None, msg: Message) -> None:
        if err is None:
            PRODUCER_DELIVERED.inc()
            return
        key, value = msg.key() or b"", msg.value() or b""
        try:
            event_id = str(self._codec.decode(value)["id"])
        except Exception:  # only names the event in the log line; the bytes are spooled either way
            event_id = "unknown"
        self._spool_undelivered(err, key, value, event_id)

    def _spool_undelivered(self, err: KafkaError, key: bytes, value: bytes, event_id: str) -> None:
        PRODUCER_FAILED.inc()
        self._spool.append(key, value)
        PRODUCER_SPOOLED.inc()
        logger.error("producer_delivery_failed_spooled event_id=%s error=%s", event_id, err.str())

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
