"""Property-based fuzzing of every documented operation: no input makes the API answer 5xx.

schemathesis generates requests from the OpenAPI document (valid and invalid
values of every parameter) and sends them to the real app on the real engine,
authorised as an owner of the workspace and without a token. (Its pytest
plugin does not load under pytest 9, so the operations are driven with
hypothesis directly.)
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from producers.synthetic import EventGenerator
from tests.support.pipeline import api_client, bearer, store_directly

pytestmark = pytest.mark.clickhouse

WS = "ws_fuzz"


def test_no_generated_request_gets_a_server_error(clickhouse_settings):
    start = datetime(2026, 1, 1, tzinfo=UTC)
    store_directly(clickhouse_settings, EventGenerator(seed=5).history([WS], 200, start, start + timedelta(days=20)))
    client = api_client(clickhouse_settings)
    schema = schemathesis.openapi.from_asgi("/openapi.json", client.app)
    owner = bearer(clickhouse_settings, WS)
    operations = [result.ok() for result in schema.get_all_operations()]
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
