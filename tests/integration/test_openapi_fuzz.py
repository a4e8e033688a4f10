"""Property-based fuzzing of every documented operation: no input makes the API answer 5xx.

schemathesis generates requests from the OpenAPI document (valid and invalid
values of every parameter) and sends them to the real app on the real engine,
authorised as an owner of the workspace and without a token. A second
property sends ``since``/``until`` over the whole accepted range (years
0001-9999, dates and datetimes with offsets, compact and garbage forms) and
unknown parameters to the list, the export, export links and the timeline. (Its pytest
plugin does not load under pytest 9, so the operations are driven with
hypothesis directly.)
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
import schemathesis
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from schemathesis.core.result import Ok

from producers.synthetic import EventGenerator
from query_api.filters import FILTER_NAMES
from query_api.routes.events import EXPORT_PARAMS, LIST_PARAMS
from tests.support.pipeline import api_client, bearer, store_directly

pytestmark = pytest.mark.clickhouse

WS = "ws_fuzz"


def test_no_generated_request_gets_a_server_error(clickhouse_settings):
    start = datetime(2026, 1, 1, tzinfo=UTC)
    store_directly(clickhouse_settings, EventGenerator(seed=5).history([WS], 200, start, start + timedelta(days=20)))
    client = api_client(clickhouse_settings)
    schema = schemathesis.openapi.from_asgi("/openapi.json", client.app)
    owner = bearer(clickhouse_settings, WS)
    operations = []
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), result  # an operation whose schema is invalid
        operations.append(result.ok())
    assert len(operations) >= 7, "the OpenAPI document lost operations"
    seen: dict[str, set[int]] = {}

    def fuzz(operation) -> None:
        label = operation.label

        @given(case=operation.as_strategy())
        @settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def run(case):
            # Half the cases keep the real workspace so that the reads run, not only the 403 path.
            params = case.path_parameters or {}
            if "workspace_id" in params and len(str(params["workspace_id"])) % 2 == 0:
                params["workspace_id"] = WS
            for headers in (owner, {}):
                response = case.call(headers=headers)
                seen.setdefault(label, set()).add(response.status_code)
                assert response.status_code < 500, (
                    f"{case.method} {case.formatted_path} query={case.query} -> {response.status_code}: "
                    f"{response.text[:300]}"
                )

        run()

    for operation in operations:
        fuzz(operation)

    # The fuzzing reached real answers, not only refusals.
    events = next(v for k, v in seen.items() if k.endswith("/audit/events"))
    assert 200 in events and (400 in events or 422 in events) and 401 in events


# Any date or datetime the contract accepts: years 0001-9999, with any offset the ISO form allows.
_OFFSETS = [UTC, timezone(timedelta(hours=14)), timezone(-timedelta(hours=12)),
            timezone(timedelta(hours=5, minutes=45))]
_ANY_MOMENT = st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31, 23, 59, 59, 999999),
                           timezones=st.sampled_from(_OFFSETS))
_DATE_TEXT = st.one_of(
    _ANY_MOMENT.map(lambda m: m.date().isoformat()),
    _ANY_MOMENT.map(lambda m: m.isoformat()),
    _ANY_MOMENT.map(lambda m: m.isoformat().replace("+00:00", "Z")),
    _ANY_MOMENT.map(lambda m: m.strftime("%Y%m%d") if m.year >= 1000 else m.date().isoformat()),
    st.text(max_size=30),
)
# Every parameter some fuzzed endpoint reads, from the routes themselves: a hand-kept list missed
# ``q`` (search, added later), and hypothesis drew it as an "unknown" parameter.
_KNOWN = {*LIST_PARAMS, *EXPORT_PARAMS, *FILTER_NAMES}
_UNKNOWN = st.dictionaries(st.text(min_size=1, max_size=12).filter(lambda k: k not in _KNOWN), st.text(max_size=8),
                           max_size=2)


def test_any_date_range_and_unknown_parameters_never_get_a_server_error(clickhouse_settings):
    start = datetime(2026, 1, 1, tzinfo=UTC)
    store_directly(clickhouse_settings, EventGenerator(seed=6).history([WS], 60, start, start + timedelta(days=20)))
    client = api_client(clickhouse_settings)
    owner = bearer(clickhouse_settings, WS)
    base = f"/v1/workspaces/{WS}/audit"
    statuses: dict[str, set[int]] = {}

    endpoints = ["events", "export?format=jsonl", "export?format=csv", "export-links", "timeline"]

    # Each endpoint surely sees a 200 and a 400, whatever the random examples draw.
    @given(since=st.none() | _DATE_TEXT, until=st.none() | _DATE_TEXT, extra=_UNKNOWN,
           endpoint=st.sampled_from(endpoints))
    @example(since=None, until=None, extra={}, endpoint="events")
    @example(since=None, until=None, extra={}, endpoint="export?format=jsonl")
    @example(since=None, until=None, extra={}, endpoint="export?format=csv")
    @example(since=None, until=None, extra={}, endpoint="export-links")
    @example(since="2026-13-01", until=None, extra={}, endpoint="events")
    @example(since="2026-13-01", until=None, extra={}, endpoint="export?format=jsonl")
    @example(since="2026-13-01", until=None, extra={}, endpoint="export?format=csv")
    @example(since="2026-13-01", until=None, extra={}, endpoint="export-links")
    @example(since=None, until=None, extra={}, endpoint="timeline")
    @example(since="2026-13-01", until=None, extra={}, endpoint="timeline")
    @example(since="0001-01-01", until="9999-12-31T23:59:59.999999-12:00", extra={}, endpoint="timeline")
    @settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    def run(since, until, extra, endpoint):
        params = {k: v for k, v in {"since": since, "until": until}.items() if v is not None}
        params.update(extra)
        method = client.post if endpoint == "export-links" else client.get
        response = method(f"{base}/{endpoint}", headers=owner, params=params)
        statuses.setdefault(endpoint, set()).add(response.status_code)
        assert response.status_code < 500, f"{endpoint} {params} -> {response.status_code}: {response.text[:300]}"
        if extra:
            assert response.status_code == 400 and response.json()["code"] == "unknown_parameter"
        elif response.status_code == 400:
            assert response.json()["field"] in {"since", "until"}, response.text

    run()
    assert all(200 in codes and 400 in codes for codes in statuses.values()), statuses
