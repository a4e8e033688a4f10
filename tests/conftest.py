"""Test-wide rules: integration tests carry a marker, unit tests touch no real service.

Like snuba's ``block_clickhouse_db``: an unmarked test that reaches for the
real ClickHouse client or a Kafka client fails at once, so ``-m "not kafka
and not clickhouse"`` really is the fast, service-free set.
"""

from __future__ import annotations

import pytest

SERVICE_MARKERS = {"kafka", "clickhouse"}


@pytest.fixture(autouse=True)
def _block_real_services(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    if SERVICE_MARKERS & {m.name for m in request.node.iter_markers()}:
        return

    def refuse(*_args: object, **_kwargs: object) -> None:
        pytest.fail("this test reached a real service: mark it @pytest.mark.kafka / @pytest.mark.clickhouse")

    import clickhouse.client

    monkeypatch.setattr(clickhouse.client, "get_client", refuse)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    from tests.support import services

    if services.USED:
        terminalreporter.write_line(f"services used: {services.describe()}")
