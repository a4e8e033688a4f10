"""The consumer: Kafka → batches → ClickHouse, committing only what is stored."""

from __future__ import annotations

import threading
from typing import Any

from auditlog.settings import Settings
from clickhouse.client import get_client
from consumer.runner import ConsumerRunner
from consumer.writer import ClickHouseWriter

__all__ = ["ClickHouseWriter", "ConsumerRunner", "build_consumer"]


def build_consumer(settings: Settings, stop: threading.Event | None = None,
                   kafka_overrides: dict[str, Any] | None = None) -> ConsumerRunner:
    """A consumer that writes to the configured ClickHouse table."""
    stop = stop or threading.Event()
    writer = ClickHouseWriter.for_client(
        get_client(settings.clickhouse.dsn),
        settings.events_table,
        initial_backoff=settings.consumer.retry_initial_seconds,
        max_backoff=settings.consumer.retry_max_seconds,
        stop=stop,
    )
    return ConsumerRunner(settings, writer, stop=stop, kafka_overrides=kafka_overrides)
