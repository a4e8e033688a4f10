"""Test-wide rules: integration tests carry a marker, unit tests touch no real service.

Like snuba's ``block_clickhouse_db``: an unmarked test that reaches for a real
ClickHouse client (clickhouse-connect, chDB) or a Kafka client fails at once, so
``-m "not kafka and not clickhouse"`` really is the fast, service-free set.
The block is applied where the clients are made: clickhouse-connect's factory
(looked up at call time) and every product module's own binding of the
confluent-kafka classes (``from confluent_kafka import Consumer`` binds the name
at import, so patching the library alone would not stop them).
"""

from __future__ import annotations

import sys

import pytest

SERVICE_MARKERS = {"kafka", "clickhouse"}
# The one broker address unit tests may give a Kafka client: the discard port, where nothing listens,
# so a client made there never reaches a service (the producer's refusal and close() tests use it).
NO_BROKER = "127.0.0.1:9"
PRODUCT_PACKAGES = ("auditlog", "producers", "schemas", "consumer", "clickhouse", "query_api", "deploy",
                    "transparency", "benchmarks")


def _refuse(*_args: object, **_kwargs: object) -> None:
    pytest.fail("this test reached a real service: mark it @pytest.mark.kafka / @pytest.mark.clickhouse")


def _kafka_guard(cls: type) -> object:
    def make(config: dict[str, object], *args: object, **kwargs: object) -> object:
        if config.get("bootstrap.servers") != NO_BROKER:
            _refuse()
        return cls(config, *args, **kwargs)

    return make


@pytest.fixture(autouse=True)
def _block_real_services(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    if SERVICE_MARKERS & {m.name for m in request.node.iter_markers()}:
        return
    import clickhouse_connect
    import clickhouse_connect.driver
    import confluent_kafka
    import confluent_kafka.admin

    monkeypatch.setattr(clickhouse_connect, "get_client", _refuse)
    monkeypatch.setattr(clickhouse_connect.driver, "create_client", _refuse)
    kafka_classes = {confluent_kafka.Producer, confluent_kafka.Consumer, confluent_kafka.admin.AdminClient}
    for name, module in list(sys.modules.items()):
        if module is None or not name.startswith(PRODUCT_PACKAGES):
            continue
        for attr, value in list(vars(module).items()):
            if isinstance(value, type) and value in kafka_classes:
                monkeypatch.setattr(module, attr, _kafka_guard(value))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    from tests.support import services

    if services.USED:
        terminalreporter.write_line(f"services used: {services.describe()}")
