"""The consumer: Kafka → batches → ClickHouse, committing only what is stored."""

from __future__ import annotations

import threading
from typing import Any

from auditlog.settings import Settings
from clickhouse.client import get_client
from consumer.engine_decode import EngineDecoder
from consumer.runner import ConsumerRunner
from consumer.writer import ClickHouseWriter
from schemas.catalog import load_catalog

__all__ = ["ClickHouseWriter", "ConsumerRunner", "build_consumer"]


def build_consumer(settings: Settings, stop: threading.Event | None = None,
                   kafka_overrides: dict[str, Any] | None = None) -> ConsumerRunner:
    """A consumer that writes to the configured ClickHouse table."""
    stop = stop or threading.Event()
    client = get_client(settings.clickhouse.dsn, settings.clickhouse.uncompressed_cache_mb)
    writer = ClickHouseWriter.for_client(
        client,
        settings.events_table,
        initial_backoff=settings.consumer.retry_initial_seconds,
        max_backoff=settings.consumer.retry_max_seconds,
        stop=stop,
    )
    engine = None
    if settings.consumer.decode_in_engine:
        engine = EngineDecoder(client, settings.clickhouse.database, settings.events_table, load_catalog())
    return ConsumerRunner(settings, writer, stop=stop, kafka_overrides=kafka_overrides, engine=engine)
