"""Driving the real pipeline in tests: produce, consume until stored, read through the API."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterable
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient

from clickhouse.client import get_client
from config.settings import Settings
from consumer import build_consumer
from producers.producer import AuditProducer
from query_api.app import build_context, create_app
from query_api.context import ApiContext
from query_api.cursor import Position
from query_api.filters import EventFilters
from query_api.queries import EventReader
from query_api.security import issue_token
from schemas.event import AuditEvent


def produce(settings: Settings, events: Iterable[AuditEvent]) -> list[str]:
    ids = []
    with AuditProducer.from_settings(settings) as producer:
        for event in events:
            ids.append(str(producer.emit_event(event)))
        assert producer.flush(30) == 0, "the broker did not take every event"
    return ids


def stored_count(settings: Settings) -> int:
    client = get_client(settings.clickhouse.dsn)
    return int(client.query(f"SELECT uniqExact(id) FROM {settings.events_table}").result_rows[0][0])


def consume_until(settings: Settings, expected: int, timeout: float = 60.0) -> None:
    """Run a real consumer until ``expected`` distinct events are stored, then stop it gracefully."""
    stop = threading.Event()
    runner = build_consumer(settings, stop)
    result: dict[str, Any] = {}
    thread = threading.Thread(target=lambda: result.setdefault("ok", runner.run().ok), daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline and stored_count(settings) < expected:
            time.sleep(0.2)
    finally:
        stop.set()
        thread.join(timeout=30)
    assert result.get("ok") is True, "the consumer did not stop cleanly"
    assert stored_count(settings) >= expected, f"only {stored_count(settings)} of {expected} events were stored"


def api_client(settings: Settings, audit_producer: AuditProducer | None = None) -> TestClient:
    return TestClient(create_app(build_context(settings, audit_producer)))


def api_context(client: TestClient) -> ApiContext:
    """The context (engine client, settings, readers) behind a client made by ``api_client``."""
    assert isinstance(client.app, FastAPI)
    context: ApiContext = client.app.state.context
    return context


def bearer(settings: Settings, workspace_id: str, role: str = "owner", user: str = "usr_test") -> dict[str, str]:
    token = issue_token(settings.api, user_id=user, email=f"{user}@example.com", roles={workspace_id: role})
    return {"Authorization": f"Bearer {token}"}


def all_pages(client: TestClient, url: str, headers: dict[str, str], params: dict[str, Any]) -> list[dict[str, Any]]:
    """Every event of a filtered listing, following next_cursor with the cursor alone."""
    response = client.get(url, headers=headers, params=params)
    assert response.status_code == 200, response.text
    body = response.json()
    events = list(body["data"])
    while body["next_cursor"]:
        response = client.get(url, headers=headers, params={"cursor": body["next_cursor"]})
        assert response.status_code == 200, response.text
        body = response.json()
        events.extend(body["data"])
    return events


def store_directly(settings: Settings, events: Iterable[AuditEvent], token: str | None = None) -> None:
    """Insert events straight into the table (read-side tests that need no broker)."""
    from clickhouse.events import insert_rows, record_to_row

    rows = [record_to_row(e.to_record(), 1) for e in events]
    # A fresh token by default: the engine drops an insert whose token it saw among the last 10,000 (a token from
    # id(rows), reused once the list is freed, made an export-contract example find an empty workspace).
    insert_rows(get_client(settings.clickhouse.dsn), settings.events_table, rows,
                token or f"direct-{uuid.uuid4().hex}")


def reader_pages(reader: EventReader, workspace_id: str, filters: EventFilters, limit: int) -> list[str]:
    """The ids of every page of ``filters`` read straight through ``reader``, each from the last one's position."""
    ids: list[str] = []
    after: Position | None = None
    while True:
        page, more = reader.page(workspace_id, filters, limit, after)
        ids += [e["id"] for e in page]
        if not more:
            return ids
        after = Position(page[-1]["occurred_at"], uuid.UUID(page[-1]["id"]))
