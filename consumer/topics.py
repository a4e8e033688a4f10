"""The topics the pipeline runs on, created when missing (``auditlog up``, ``auditlog kafka start``, tests).

A production cluster usually has its topics made by its operators (with their
replication factor and retention); this creates only what is missing and never
changes an existing topic.
"""

from __future__ import annotations

import logging

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

logger = logging.getLogger(__name__)


def ensure_topics(bootstrap_servers: str, topics: list[str], partitions: int, replication_factor: int = 1) -> None:
    """Create each of ``topics`` that does not exist yet, with ``partitions`` partitions."""
    admin = AdminClient({"bootstrap.servers": bootstrap_servers})
    existing = set(admin.list_topics(timeout=10).topics)
    missing = [NewTopic(t, num_partitions=partitions, replication_factor=replication_factor)
               for t in topics if t not in existing]
    if not missing:
        return
    for topic, future in admin.create_topics(missing).items():
        try:
            future.result(timeout=30)
        except KafkaException as err:
            if "TOPIC_ALREADY_EXISTS" not in str(err):
                raise
        logger.info("topic_created topic=%s partitions=%d", topic, partitions)
