"""The consumer: Kafka → batches → ClickHouse, committing only what is stored.

``build_consumer`` wires the parts: ``KafkaSource`` (the group member),
``EventStore`` (stage, check, write-once ids, insert, split), the dead-letter
writer, the retry policy and the health report, around ``ConsumerLoop``.
"""

from __future__ import annotations

import threading
from typing import Any

from clickhouse.client import get_client, is_embedded
from config.settings import Settings
from consumer.dlq import DeadLetterWriter
from consumer.health import ConsumerHealth
from consumer.kafka import KafkaSource, consumer_config
from consumer.loop import ConsumerLoop, RunResult
from consumer.retry import RetryPolicy
from consumer.staging import drop_leftover_staging
from consumer.store import EventStore, engine_decode, python_decode
from schemas.catalog import Catalog, load_catalog
from schemas.codec import default_codec

__all__ = ["ConsumerHealth", "ConsumerLoop", "RunResult", "build_consumer"]


def build_consumer(settings: Settings, stop: threading.Event | None = None, *,
                   kafka_overrides: dict[str, Any] | None = None, catalog: Catalog | None = None,
                   client: Any = None, health: ConsumerHealth | None = None) -> ConsumerLoop:
    """A consumer that writes to the configured ClickHouse table.

    ``client`` replaces the configured ClickHouse client (tests wrap the real one to inject failures).
    """
    stop = stop or threading.Event()
    c = settings.consumer
    ch = settings.clickhouse
    client = client or get_client(ch.dsn, ch.uncompressed_cache_mb)
    # Staging tables of consumers killed before they could drop them. On the embedded engine no other
    # process can be using one; on a server, only those older than any live consumer's may go.
    drop_leftover_staging(client, ch.database,
                          older_than_seconds=None if is_embedded(ch.dsn) else c.staging_leftover_seconds)
    store = EventStore(
        client, database=ch.database, events_table=settings.events_table, codec=default_codec(),
        catalog=catalog or load_catalog(), check=engine_decode if c.decode_in_engine else python_decode,
        max_partitions=c.max_partitions_per_insert, indexes_built_at_merge=c.indexes_built_at_merge,
    )
    health = health or ConsumerHealth(c.stall_seconds)
    retry = RetryPolicy(initial=c.retry_initial_seconds, max_delay=c.retry_max_seconds,
                        give_up_after=c.outage_max_seconds, stop=stop, health=health)
    source = KafkaSource(settings.kafka.topic, {**consumer_config(settings.kafka, c), **(kafka_overrides or {})},
                         lag_interval=c.lag_interval_seconds)
    return ConsumerLoop(
        source=source, store=store, dead_letters=DeadLetterWriter(settings.kafka.bootstrap_servers,
                                                                  settings.kafka.dlq_topic),
        retry=retry, health=health, topic=settings.kafka.topic, batch_max_events=c.batch_max_events,
        batch_max_seconds=c.batch_max_seconds, stop=stop, rejoin_max_seconds=c.rejoin_max_seconds,
    )
