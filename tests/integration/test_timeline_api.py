"""The activity timeline on the real engine: its counts are the list's, bucket by bucket, for any filters."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from clickhouse.client import get_client
from clickhouse.events import as_utc
from producers.synthetic import EventGenerator
from query_api.queries import ch_time
from query_api.timeline import LADDER, TIMELINE_SETTINGS, bucket_expression
from tests.support.pipeline import api_client, bearer, store_directly

pytestmark = pytest.mark.clickhouse

WS = "ws_timeline"
URL = f"/v1/workspaces/{WS}/audit/timeline"
LIST = f"/v1/workspaces/{WS}/audit/events"
START = datetime(2026, 1, 1, tzinfo=UTC)
END = START + timedelta(days=40)
SIZES = {s.label: s for s in LADDER}
# The data is read-only once stored, so hypothesis may reuse the function-scoped fixture's store.
REUSE = settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture
def api(clickhouse_settings):
    generator = EventGenerator(seed=11)
    events = list(generator.history([WS, "ws_other"], 400, START, END))
    store_directly(clickhouse_settings, events)
    # Copies not merged yet (a retried insert under another token): counted once, as the list shows them once.
    store_directly(clickhouse_settings, [e for e in events if e.workspace_id == WS][:120], token="a-retry")
    client = api_client(clickhouse_settings)
    return client, bearer(clickhouse_settings, WS, "admin"), [e for e in events if e.workspace_id == WS]


def listed(client, headers, params: dict[str, str]) -> list[datetime]:
    """The occurred_at of every event the list pages through for ``params``."""
    out: list[datetime] = []
    query: dict[str, Any] = {**params, "limit": 200}
    while True:
        response = client.get(LIST, headers=headers, params=query)
        assert response.status_code == 200, response.text
        body = response.json()
        out += [datetime.fromisoformat(e["occurred_at"]) for e in body["data"]]
        if not body["next_cursor"]:
            return out
        query = {"cursor": body["next_cursor"], "limit": 200}


def at(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def _in_order(params: dict[str, str]) -> dict[str, str]:
    """since <= until (the list refuses the reverse, a case of its own below)."""
    if "since" in params and "until" in params and params["since"] > params["until"]:
        params["since"], params["until"] = params["until"], params["since"]
    return params


filters = st.fixed_dictionaries({}, optional={
    "category": st.sampled_from(["members", "auth_tokens", "integrations", "all"]),
    "action": st.sampled_from(["MEMBER_ADDED", "API_TOKEN_CREATED", "LOGIN_FAILED_LOCKOUT"]),
    "target_kind": st.sampled_from(["user", "integration", "api_token"]),
    "actor": st.sampled_from(["a", "bot", "@", "zz-nobody"]),
    # The search composes like every filter: the timeline counts what the list pages through for it.
    "q": st.sampled_from(["member", "member -bot", "actor:a token", '"token created"', "int_github", "zz-none"]),
    "since": st.integers(-5 * 86400, 45 * 86400).map(lambda s: at(START + timedelta(seconds=s))),
    "until": st.integers(-5 * 86400, 45 * 86400).map(lambda s: at(START + timedelta(seconds=s))),
}).map(_in_order)


@REUSE
@given(params=filters)
def test_every_listed_event_is_counted_in_exactly_one_bucket(api, params):
    client, headers, _ = api
    response = client.get(URL, headers=headers, params=params)
    assert response.status_code == 200, response.text
    body = response.json()
    times = listed(client, headers, params)
    assert body["total"] == len(times) == sum(b["count"] for b in body["buckets"])
    buckets = [(datetime.fromisoformat(b["start"]), datetime.fromisoformat(b["end"]), b["count"])
               for b in body["buckets"]]
    for t in times:
        assert sum(1 for lo, hi, _ in buckets if lo <= t < hi) == 1, t
    for lo, hi, count in buckets:
        assert count == sum(1 for t in times if lo <= t < hi)


@REUSE
@given(params=filters)
def test_buckets_are_aligned_contiguous_and_cover_the_range(api, params):
    client, headers, _ = api
    body = client.get(URL, headers=headers, params=params).json()
    if not body["buckets"]:
        return
    size = SIZES[body["bucket"]]
    starts = [datetime.fromisoformat(b["start"]) for b in body["buckets"]]
    ends = [datetime.fromisoformat(b["end"]) for b in body["buckets"]]
    assert all(size.align(s) == s and size.after(s) == e for s, e in zip(starts, ends, strict=True))
    assert starts[1:] == ends[:-1]
    assert starts[0] <= datetime.fromisoformat(body["since"])
    assert datetime.fromisoformat(body["until"]) < ends[-1]
    assert len(starts) <= api_client_settings_max(client)


def api_client_settings_max(client) -> int:
    return int(client.app.state.context.settings.api.timeline_max_buckets)


def test_without_bounds_the_range_is_the_workspaces_first_to_last_event(api):
    client, headers, events = api
    body = client.get(URL, headers=headers).json()
    times = sorted(e.occurred_at for e in events)
    assert datetime.fromisoformat(body["since"]) == times[0]
    assert datetime.fromisoformat(body["until"]) == times[-1]
    assert body["bucket"] == "1d"  # 40 days: 160 bars of 6 h would be more than 120
    assert body["total"] == len(events)
    assert body["filters"] == {}


def test_a_filter_keeps_the_workspaces_range_so_views_line_up(api):
    client, headers, _ = api
    whole = client.get(URL, headers=headers).json()
    members = client.get(URL, headers=headers, params={"category": "members"}).json()
    assert [b["start"] for b in members["buckets"]] == [b["start"] for b in whole["buckets"]]
    assert 0 < members["total"] < whole["total"]
    assert members["filters"] == {"category": "members"}


def test_empty_buckets_are_zeros_inside_a_quiet_stretch(api):
    client, headers, _ = api
    body = client.get(URL, headers=headers, params={"since": "2025-06-01", "until": "2025-06-03"}).json()
    assert body["bucket"] == "1h" and body["total"] == 0
    assert len(body["buckets"]) == 72 and {b["count"] for b in body["buckets"]} == {0}
    assert body["until"] == "2025-06-03T23:59:59.999999Z"


def test_a_quiet_workspace_answers_an_empty_well_formed_timeline(api):
    client, _, _ = api
    settings_ = client.app.state.context.settings
    body = client.get("/v1/workspaces/ws_quiet/audit/timeline", headers=bearer(settings_, "ws_quiet")).json()
    assert body == {"bucket": None, "since": None, "until": None, "total": 0, "buckets": [], "filters": {}}


def test_since_after_the_last_event_shows_one_empty_bucket(api):
    client, headers, _ = api
    body = client.get(URL, headers=headers, params={"since": "2030-01-01"}).json()
    assert body["bucket"] == "1m" and body["total"] == 0
    assert [b["start"] for b in body["buckets"]] == ["2030-01-01T00:00:00Z"]


def test_the_engines_extremes_land_in_their_own_decades(clickhouse_settings):
    generator = EventGenerator(seed=5)
    base = generator.event("ws_edges", START)
    moments = [datetime(1900, 1, 1, tzinfo=UTC), datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
               datetime(2150, 6, 1, tzinfo=UTC), datetime(2299, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)]
    store_directly(clickhouse_settings,
                   [dataclasses.replace(base, id=uuid.uuid4(), occurred_at=m) for m in moments])
    client = api_client(clickhouse_settings)
    body = client.get("/v1/workspaces/ws_edges/audit/timeline",
                      headers=bearer(clickhouse_settings, "ws_edges")).json()
    assert body["bucket"] == "10y" and len(body["buckets"]) == 40
    counted = {b["start"][:4]: b["count"] for b in body["buckets"] if b["count"]}
    # Without the engine's extended results, 1900 and 1969 would both be counted in 1970.
    assert counted == {"1900": 1, "1960": 1, "2150": 1, "2290": 1}
    narrow = client.get("/v1/workspaces/ws_edges/audit/timeline", headers=bearer(clickhouse_settings, "ws_edges"),
                        params={"since": "1969-12-31T18:00:00Z", "until": "1969-12-31T23:59:59.999999Z"}).json()
    assert narrow["bucket"] == "5m" and narrow["buckets"][-1]["count"] == 1
    assert narrow["buckets"][-1]["start"] == "1969-12-31T23:55:00Z"
    wide = client.get("/v1/workspaces/ws_edges/audit/timeline", headers=bearer(clickhouse_settings, "ws_edges"),
                      params={"since": "0001-01-01", "until": "9999-12-31"}).json()
    assert wide["total"] == 4 and wide["since"] == "1900-01-01T00:00:00Z"


@pytest.mark.parametrize(("params", "field"), [
    ({"since": "2026-02-30"}, "since"), ({"until": "yesterday"}, "until"), ({"since": "20260101"}, "since"),
    ({"until": "2026-01-01T10:00:00"}, "until"), ({"category": "nope"}, "category"), ({"action": "nope"}, "action"),
    ({"limit": "5"}, "limit"), ({"bucket": "1d"}, "bucket"),
    ({"since": "2026-01-02", "until": "2026-01-01"}, "since"),
])
def test_bad_parameters_get_a_400_naming_them(api, params, field):
    client, headers, _ = api
    response = client.get(URL, headers=headers, params=params)
    assert response.status_code == 400
    assert response.json()["field"] == field


@pytest.mark.parametrize(("role", "status"), [("member", 403), ("viewer", 403)])
def test_only_owners_and_admins_see_the_timeline(api, role, status):
    client, _, _ = api
    settings_ = client.app.state.context.settings
    response = client.get(URL, headers=bearer(settings_, WS, role))
    assert response.status_code == status
    assert "buckets" not in response.json()
    assert client.get(URL).status_code == 401
    assert client.get(URL, headers=bearer(settings_, "ws_other", "owner")).status_code == 403


def test_the_timeline_is_in_the_openapi_document(api):
    client, _, _ = api
    spec = client.get("/openapi.json").json()
    operation = spec["paths"]["/v1/workspaces/{workspace_id}/audit/timeline"]["get"]
    assert {p["name"] for p in operation["parameters"]} >= {"since", "until", "category", "action", "actor"}
    assert "TimelineOut" in spec["components"]["schemas"]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(moment=st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(2299, 12, 31, 23, 59, 59, 999999),
                           timezones=st.just(UTC)),
       size=st.sampled_from(LADDER))
@example(moment=datetime(1969, 12, 31, 23, 59, 59, 500000, tzinfo=UTC), size=LADDER[5])  # 1d: the rounding trap
@example(moment=datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=UTC), size=LADDER[7])  # 1mo
@example(moment=datetime(1900, 1, 1, tzinfo=UTC), size=LADDER[-1])
def test_the_engine_and_python_align_every_moment_alike(clickhouse_settings, moment, size):
    client = get_client(clickhouse_settings.clickhouse.dsn)
    rows = client.query(f"SELECT {bucket_expression(size)} FROM (SELECT {{t:DateTime64(6, 'UTC')}} AS occurred_at)",
                        parameters={"t": ch_time(moment)}, settings=TIMELINE_SETTINGS).result_rows
    assert as_utc(rows[0][0]) == size.align(moment)
