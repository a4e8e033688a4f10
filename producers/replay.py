"""Sending spooled events again (``auditlog spool replay``)."""

from __future__ import annotations

import logging
import os

from confluent_kafka import Producer

from auditlog.settings import Settings
from producers.metrics import PRODUCER_REPLAYED
from producers.producer import kafka_producer_config
from producers.spool import Spool

logger = logging.getLogger(__name__)


def replay_spool(settings: Settings, timeout: float = 60.0) -> tuple[int, int]:
    """Send every spooled message with its original bytes; returns (sent, still_spooled).

    The spool is moved aside first; anything not acknowledged goes back into a
    fresh spool, so a replay against a still-dead broker loses nothing. The
    events keep their ids, and the consumer's dedup makes a message that was
    delivered after all harmless.
    """
    spool = Spool(settings.producer.spool_dir)
    taken = spool.take()
    if taken is None:
        return 0, 0
    producer = Producer(kafka_producer_config(settings))
    failed: list[tuple[bytes, bytes]] = []
    sent = 0

    def make_cb(key: bytes, value: bytes):  # type: ignore[no-untyped-def]
        def cb(err, _msg):  # type: ignore[no-untyped-def]
            nonlocal sent
            if err is None:
                sent += 1
            else:
                failed.append((key, value))

        return cb

    for key, value in Spool(taken.parent, taken.name).read():
        while True:
            try:
                producer.produce(settings.kafka.topic, key=key, value=value, on_delivery=make_cb(key, value))
                break
            except BufferError:
                producer.poll(0.5)
        producer.poll(0)
    producer.flush(timeout)
    producer.purge()
    producer.flush(1)
    for key, value in failed:
        spool.append(key, value)
    os.remove(taken)
    PRODUCER_REPLAYED.inc(sent)
    logger.info("spool_replayed sent=%d respooled=%d", sent, len(failed))
    return sent, len(failed)
