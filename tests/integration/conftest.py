"""Real Kafka and real ClickHouse for the integration tests (see tests/support/services.py)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from clickhouse.client import get_client
from clickhouse.migrations import migrate
from config.settings import Settings
from consumer.topics import ensure_topics
from tests.support import services


def _require_marker(request: pytest.FixtureRequest, name: str) -> None:
    if request.node.get_closest_marker(name) is None:
        pytest.fail(f"a test using the real {name} must be marked @pytest.mark.{name} so that -m selects it")


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    # Under pytest's base temp dir, which keeps only the last few runs' folders.
    with services.kafka_service(tmp_path_factory.mktemp("kafka")) as bootstrap:
        yield bootstrap


@pytest.fixture(scope="session")
def clickhouse_dsn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with services.clickhouse_service(tmp_path_factory.mktemp("chdb")) as dsn:
        yield dsn


@pytest.fixture
def settings(request: pytest.FixtureRequest, kafka_bootstrap: str, clickhouse_dsn: str, tmp_path) -> Iterator[Settings]:
    """Settings for one test: its own topics, consumer group, database and spool."""
    _require_marker(request, "kafka")
    _require_marker(request, "clickhouse")
    tag = uuid.uuid4().hex[:10]
    s = Settings.model_validate(
        {
            "kafka": {"bootstrap_servers": kafka_bootstrap, "topic": f"audit.events.t{tag}",
                      "dlq_topic": f"audit.events.dlq.t{tag}", "partitions": 4},
            "clickhouse": {"dsn": clickhouse_dsn, "database": f"audit_t{tag}", "table": "events"},
            "consumer": {"group_id": f"auditlog-test-{tag}", "batch_max_events": 500, "batch_max_seconds": 0.3,
                         "retry_initial_seconds": 0.1, "retry_max_seconds": 1.0},
            "producer": {"spool_dir": str(tmp_path / "spool"), "delivery_timeout_ms": 10_000,
                         "service_name": "tests"},
            "api": {"jwt_secret": "test-secret-with-at-least-32-bytes!!", "cursor_secret": "cursor-test-secret"},
        }
    )
    ensure_topics(kafka_bootstrap, [s.kafka.topic, s.kafka.dlq_topic], s.kafka.partitions)
    client = get_client(clickhouse_dsn)
    migrate(client, s.clickhouse.database, s.clickhouse.table)
    try:
        yield s
    finally:
        client.command(f"DROP DATABASE IF EXISTS {s.clickhouse.database}")


@pytest.fixture
def clickhouse_settings(request: pytest.FixtureRequest, clickhouse_dsn: str) -> Iterator[Settings]:
    """Settings with only a fresh ClickHouse database (no Kafka), for store and API tests."""
    _require_marker(request, "clickhouse")
    tag = uuid.uuid4().hex[:10]
    s = Settings.model_validate(
        {
            "clickhouse": {"dsn": clickhouse_dsn, "database": f"audit_t{tag}", "table": "events"},
            "api": {"jwt_secret": "test-secret-with-at-least-32-bytes!!", "cursor_secret": "cursor-test-secret"},
        }
    )
    client = get_client(clickhouse_dsn)
    migrate(client, s.clickhouse.database, s.clickhouse.table)
    try:
        yield s
    finally:
        client.command(f"DROP DATABASE IF EXISTS {s.clickhouse.database}")
