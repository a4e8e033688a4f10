"""Events emitted through the producer come back through the API exactly once, in order, per filter."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from producers.synthetic import EventGenerator
from schemas.event import AuditEvent
from tests.support.pipeline import all_pages, api_client, bearer, consume_until, produce

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse]

WS = "ws_e2e"
OTHER = "ws_other"
START = datetime(2026, 5, 1, tzinfo=UTC)
END = datetime(2026, 7, 1, tzinfo=UTC)


def _expected(events: list[AuditEvent], **f: str) -> list[str]:
    def keep(e: AuditEvent) -> bool:
        if e.workspace_id != WS:
            return False
        if "category" in f and e.category != f["category"]:
            return False
        if "target_kind" in f and e.target.kind != f["target_kind"]:
            return False
        if "action" in f and e.action != f["action"]:
            return False
        if "actor" in f and f["actor"].lower() not in e.actor.display.lower():
            return False
        if "since" in f and e.occurred_at < datetime.fromisoformat(f["since"]).replace(tzinfo=UTC):
            return False
        return not ("until" in f and e.occurred_at >= datetime.fromisoformat(f["until"]).replace(tzinfo=UTC)
                    + timedelta(days=1))

    chosen = sorted((e for e in events if keep(e)), key=lambda e: (e.occurred_at, e.id), reverse=True)
    return [str(e.id) for e in chosen]


@pytest.fixture
def loaded(settings):
    generator = EventGenerator(seed=11)
    events = list(generator.history([WS, WS, OTHER], 900, START, END))
    ids = produce(settings, events)
    assert len(set(ids)) == len(events)
    consume_until(settings, len(events))
    return settings, events


def test_every_event_comes_back_once_in_order_across_pages(loaded):
    settings, events = loaded
    client = api_client(settings)
    url = f"/v1/workspaces/{WS}/audit/events"
    got = all_pages(client, url, bearer(settings, WS), {"limit": 37})
    got_ids = [e["id"] for e in got]
    assert len(got_ids) == len(set(got_ids)), "an event was shown twice"
    assert got_ids == _expected(events)
    times = [e["occurred_at"] for e in got]
    assert times == sorted(times, reverse=True)


@pytest.mark.parametrize(
    "filters",
    [
        {"category": "members"},
        {"category": "pipelines"},
        {"actor": "ALEX@"},
        {"actor": "ci-bot"},
        {"target_kind": "pipeline_run"},
        {"action": "REPOSITORY_RUN_CLAIM"},
        {"since": "2026-06-01", "until": "2026-06-10"},
        {"category": "pipelines", "actor": "bot"},
        {"target_kind": "user", "since": "2026-05-15"},
    ],
    ids=lambda f: "+".join(f),
)
def test_each_filter_and_composed_filters_across_pages_keep_the_question(loaded, filters):
    settings, events = loaded
    client = api_client(settings)
    url = f"/v1/workspaces/{WS}/audit/events"
    headers = bearer(settings, WS)
    expected = _expected(events, **filters)
    assert expected, f"the generated history has no events for {filters}; the test would prove nothing"

    first = client.get(url, headers=headers, params={**filters, "limit": 10}).json()
    pages = [first]
    while pages[-1]["next_cursor"]:
        nxt = client.get(url, headers=headers, params={"cursor": pages[-1]["next_cursor"]}).json()
        assert nxt["filters"] == first["filters"], "the cursor lost the filters"
        assert nxt["limit"] == 10
        pages.append(nxt)
    got = [e["id"] for p in pages for e in p["data"]]
    assert got == expected
    if len(expected) > 10:
        assert len(pages) > 1


def test_export_equals_the_concatenation_of_all_pages(loaded):
    import json

    settings, _events = loaded
    client = api_client(settings)
    headers = bearer(settings, WS)
    filters = {"category": "pipelines", "since": "2026-05-10"}
    pages = all_pages(client, f"/v1/workspaces/{WS}/audit/events", headers, {**filters, "limit": 50})
    response = client.get(f"/v1/workspaces/{WS}/audit/export", headers=headers, params={**filters, "format": "jsonl"})
    assert response.status_code == 200
    exported = [json.loads(line) for line in response.text.splitlines() if line]
    assert [e["id"] for e in exported] == [e["id"] for e in pages]
    for row, page_row in zip(exported, pages, strict=True):
        assert row["payload"] == page_row["payload"]
        assert row["actor"] == page_row["actor"]
        assert row["occurred_at"].replace("Z", "") == page_row["occurred_at"].replace("Z", "")
