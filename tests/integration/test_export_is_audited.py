"""Who took the data: an export is itself recorded as an audit event, through the real pipeline."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from producers.producer import AuditProducer
from producers.synthetic import EventGenerator
from tests.support.pipeline import api_client, bearer, consume_until, store_directly

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse]

WS = "ws_exported"


def test_an_export_is_recorded_with_who_and_which_filters(settings):
    start = datetime(2026, 4, 1, tzinfo=UTC)
    store_directly(settings, EventGenerator(seed=8).history([WS], 50, start, start + timedelta(days=3)))
    with AuditProducer.from_settings(settings) as producer:
        client = api_client(settings, audit_producer=producer)
        response = client.get(f"/v1/workspaces/{WS}/audit/export",
                              headers=bearer(settings, WS, "admin", user="usr_auditor"),
                              params={"format": "csv", "category": "members", "actor": "alex@"})
        assert response.status_code == 200
        producer.flush(10)
    consume_until(settings, 51)
    # The synthetic history may hold exports of its own people: ask for this one's.
    page = client.get(f"/v1/workspaces/{WS}/audit/events", headers=bearer(settings, WS),
                      params={"action": "WORKSPACE_AUDIT_EXPORTED", "actor": "usr_auditor@"}).json()["data"]
    assert len(page) == 1
    recorded = page[0]
    assert recorded["actor"] == {"kind": "user", "id": "usr_auditor", "display": "usr_auditor@example.com"}
    assert recorded["category"] == "workspace"
    assert recorded["payload"]["after"] == {"format": "csv", "filter_category": "members", "filter_actor": "alex@"}
