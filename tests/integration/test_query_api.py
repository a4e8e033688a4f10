"""The query API on the real engine: access rules, bad input, cursors, single events, the catalog."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from producers.synthetic import EventGenerator
from query_api.export import EventExporter
from query_api.filters import EventFilters
from tests.support.pipeline import all_pages, api_client, bearer, store_directly

pytestmark = pytest.mark.clickhouse

WS = "ws_api"
URL = f"/v1/workspaces/{WS}/audit/events"
START = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture
def api(clickhouse_settings):
    generator = EventGenerator(seed=3)
    events = list(generator.history([WS, "ws_neighbour"], 400, START, START + timedelta(days=30)))
    store_directly(clickhouse_settings, events)
    return clickhouse_settings, api_client(clickhouse_settings), events


@pytest.mark.parametrize("role", ["owner", "admin"])
def test_owners_and_admins_read_their_workspace(api, role):
    settings, client, _ = api
    response = client.get(URL, headers=bearer(settings, WS, role))
    assert response.status_code == 200
    assert len(response.json()["data"]) == 50


@pytest.mark.parametrize("role", ["member", "viewer"])
def test_other_roles_get_a_polite_403_and_no_data(api, role):
    settings, client, _ = api
    response = client.get(URL, headers=bearer(settings, WS, role))
    assert response.status_code == 403
    body = response.json()
    assert body == {"status": 403, "code": "no_access", "message": body["message"], "field": None}
    assert "owners and admins" in body["message"]
    assert "data" not in body
    export = client.get(f"/v1/workspaces/{WS}/audit/export", headers=bearer(settings, WS, role))
    assert export.status_code == 403


def test_an_owner_of_another_workspace_gets_403(api):
    settings, client, _ = api
    assert client.get(URL, headers=bearer(settings, "ws_neighbour", "owner")).status_code == 403


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer nope"}, {"Authorization": "Token abc"}])
def test_missing_or_bad_tokens_get_401(api, headers):
    _, client, _ = api
    response = client.get(URL, headers=headers)
    assert response.status_code == 401
    assert response.json()["message"]


@pytest.mark.parametrize(
    ("params", "status", "fragment"),
    [
        ({"since": "2026-02-31"}, 400, "not a real date"),
        ({"since": "last tuesday"}, 400, "not a date"),
        ({"since": "2026-03-01", "until": "2026-02-01"}, 400, "after until"),
        ({"category": "billing"}, 400, "not a category"),
        ({"target_kind": "planet"}, 400, "not a target kind"),
        ({"limit": 0}, 400, "limit must be at least 1"),
        ({"limit": 201}, 400, "limit must be at most 200"),
        ({"limit": "ten"}, 400, "limit must be a whole number (got 'ten')"),
        ({"cursor": "garbage"}, 400, "malformed"),
        ({"actor": "x" * 5000}, 400, "actor must be at most 1000 characters long"),
        ({"actor": "y" * 300}, 400, "at most 200"),
        ({"action": "x' OR 1=1 --"}, 400, "not an action name"),
    ],
)
def test_bad_input_gets_a_4xx_with_a_message_never_a_500(api, params, status, fragment):
    settings, client, _ = api
    response = client.get(URL, headers=bearer(settings, WS), params=params)
    assert response.status_code == status, response.text
    body = response.json()
    assert fragment in body["message"]
    assert set(body) == {"status", "code", "message", "field"} and body["status"] == status
    assert body["field"] == next(iter(params))  # the parameter at fault is named


@pytest.mark.parametrize("actor", ["'; DROP TABLE events; --", "%", "_", "\\", "ALEX@' OR '1'='1", "ünïcødé"])
def test_sql_looking_actor_strings_are_plain_text(api, actor):
    settings, client, events = api
    response = client.get(URL, headers=bearer(settings, WS), params={"actor": actor})
    assert response.status_code == 200
    expected = [e for e in events if e.workspace_id == WS and actor.lower() in e.actor.display.lower()]
    assert len(response.json()["data"]) == min(50, len(expected))


def test_a_cursor_with_different_filters_is_400(api):
    settings, client, _ = api
    first = client.get(URL, headers=bearer(settings, WS), params={"category": "pipelines", "limit": 5}).json()
    response = client.get(URL, headers=bearer(settings, WS),
                          params={"cursor": first["next_cursor"], "category": "members"})
    assert response.status_code == 400
    assert "different set of filters" in response.json()["message"]
    same = client.get(URL, headers=bearer(settings, WS),
                      params={"cursor": first["next_cursor"], "category": "pipelines"})
    assert same.status_code == 200


def test_a_tampered_cursor_and_one_from_another_workspace_are_400(api):
    settings, client, _ = api
    first = client.get(URL, headers=bearer(settings, WS), params={"limit": 5}).json()
    cursor = first["next_cursor"]
    tampered = ("A" if cursor[0] != "A" else "B") + cursor[1:]
    response = client.get(URL, headers=bearer(settings, WS), params={"cursor": tampered})
    assert response.status_code == 400
    other = client.get("/v1/workspaces/ws_neighbour/audit/events", headers=bearer(settings, "ws_neighbour"),
                       params={"limit": 5}).json()["next_cursor"]
    response = client.get(URL, headers=bearer(settings, WS), params={"cursor": other})
    assert response.status_code == 400
    assert "another workspace" in response.json()["message"]


def test_events_inserted_while_paging_do_not_shift_later_pages(api):
    settings, client, _ = api
    headers = bearer(settings, WS)
    before = all_pages(client, URL, headers, {"limit": 40})
    first = client.get(URL, headers=headers, params={"limit": 40}).json()
    newer = EventGenerator(seed=99).history([WS], 30, START + timedelta(days=31), START + timedelta(days=32))
    store_directly(settings, newer)
    rest = all_pages(client, URL, headers, {"cursor": first["next_cursor"]}) if first["next_cursor"] else []
    assert [e["id"] for e in first["data"]] + [e["id"] for e in rest] == [e["id"] for e in before]


def test_one_event_by_id_and_404_for_an_unknown_one(api):
    settings, client, events = api
    mine = next(e for e in events if e.workspace_id == WS)
    response = client.get(f"{URL}/{mine.id}", headers=bearer(settings, WS))
    assert response.status_code == 200
    body = response.json()
    assert body["id"] == str(mine.id)
    assert body["payload"]["after"] == json.loads(json.dumps(mine.after))
    assert client.get(f"{URL}/{uuid.uuid4()}", headers=bearer(settings, WS)).status_code == 404
    theirs = next(e for e in events if e.workspace_id == "ws_neighbour")
    assert client.get(f"{URL}/{theirs.id}", headers=bearer(settings, WS)).status_code == 404


def test_rows_carry_actor_action_target_time_and_structured_before_after(api):
    settings, client, _ = api
    rows = client.get(URL, headers=bearer(settings, WS), params={"action": "MEMBER_ROLE_CHANGED", "limit": 200})
    data = rows.json()["data"]
    for row in data:
        assert row["actor"]["display"] and row["target"]["kind"] == "user"
        assert set(row["payload"]["before"]) == {"role"} and set(row["payload"]["after"]) == {"role"}


def test_the_catalog_lists_chips_target_kinds_and_actions(api):
    _, client, _ = api
    body = client.get("/v1/audit/catalog").json()
    assert "Auth & tokens" in [c["label"] for c in body["categories"]]
    assert len(body["target_kinds"]) == 10
    assert len(body["actions"]) >= 60


def test_csv_export_has_a_header_and_the_payload_as_a_json_column(api):
    import csv
    import io

    settings, client, events = api
    response = client.get(f"/v1/workspaces/{WS}/audit/export", headers=bearer(settings, WS),
                          params={"format": "csv", "category": "members"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    expected = sorted((e for e in events if e.workspace_id == WS and e.category == "members"),
                      key=lambda e: (e.occurred_at, e.id), reverse=True)
    assert [r["id"] for r in rows] == [str(e.id) for e in expected]
    assert all(set(json.loads(r["payload"])) == {"before", "after"} for r in rows)


def test_export_streams_in_chunks_and_still_equals_all_pages(api):
    settings, client, _ = api
    context = client.app.state.context
    exporter = EventExporter(context.client, settings.events_table, chunk_rows=17)
    chunks = list(exporter.chunks(WS, EventFilters(), "jsonl"))
    assert len(chunks) > 5
    exported = [json.loads(line)["id"] for chunk in chunks for line in chunk.decode().splitlines() if line]
    pages = all_pages(client, URL, bearer(settings, WS), {"limit": 200})
    assert exported == [p["id"] for p in pages]
