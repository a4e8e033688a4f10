"""Parquet export (issue 15) on the real engine: read back with pyarrow, the same rows and values as JSONL.

Same filters, same rows in the same order, row groups of at most the configured
size (``AUDITLOG_API__EXPORT_PARQUET_ROW_GROUP_ROWS``, independent of the JSONL/CSV
chunk), a stable schema even with zero rows, the same 400 for an unknown format, single-use
links. The failed export (no footer, a failed record) is in
test_export_is_audited.py, next to the other formats' failures.
"""

from __future__ import annotations

import dataclasses
import io
import json
import math
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clickhouse.client import get_client
from config.settings import PARQUET_ROW_GROUP_ROWS_RANGE
from producers.synthetic import EventGenerator
from query_api.export import PARQUET_SCHEMA, EventExporter
from query_api.filters import EventFilters
from tests.support.pipeline import api_client, api_context, bearer, store_directly

pytestmark = pytest.mark.clickhouse

START = datetime(2026, 1, 1, tzinfo=UTC)
CHUNK = 10
GROUP = PARQUET_ROW_GROUP_ROWS_RANGE[0]  # the smallest row group the settings take: 1,000 rows
EVENTS = 250


def _small_chunks(settings_):
    return settings_.model_copy(update={"api": settings_.api.model_copy(
        update={"export_chunk_rows": CHUNK, "export_parquet_row_group_rows": GROUP})})


def _row_groups(parquet: pq.ParquetFile) -> list[int]:
    return [parquet.metadata.row_group(i).num_rows for i in range(parquet.metadata.num_row_groups)]


def _assert_groups_within(parquet: pq.ParquetFile, size: int) -> None:
    """Every row group holds 1..``size`` rows, so there are at least rows / size of them."""
    groups = _row_groups(parquet)
    assert all(0 < n <= size for n in groups), groups
    assert len(groups) >= math.ceil(parquet.metadata.num_rows / size), groups


def _export(client, ws: str, headers: dict[str, str], fmt: str, **params: str):
    response = client.get(f"/v1/workspaces/{ws}/audit/export", headers=headers, params={"format": fmt, **params})
    assert response.status_code == 200, response.text
    return response


def _jsonl_as_rows(text: str) -> list[dict[str, Any]]:
    """JSONL lines flattened to the Parquet columns, with Python values."""
    rows = []
    for line in text.splitlines():
        e = json.loads(line)
        rows.append({
            "id": e["id"], "workspace_id": e["workspace_id"],
            "occurred_at": datetime.fromisoformat(e["occurred_at"]), "action": e["action"],
            "category": e["category"], "actor_kind": e["actor"]["kind"], "actor_id": e["actor"]["id"],
            "actor_display": e["actor"]["display"], "target_kind": e["target"]["kind"],
            "target_id": e["target"]["id"], "target_display": e["target"]["display"], "payload": e["payload"],
            **e["context"],
        })
    return rows


def _parquet_rows(content: bytes) -> tuple[pq.ParquetFile, list[dict[str, Any]]]:
    parquet = pq.ParquetFile(io.BytesIO(content))
    rows = parquet.read().to_pylist()
    for row in rows:
        row["payload"] = json.loads(row["payload"])  # the payload's JSON text
    return parquet, rows


def _same_as_jsonl(client, ws: str, headers: dict[str, str], **params: str) -> pq.ParquetFile:
    jsonl = _jsonl_as_rows(_export(client, ws, headers, "jsonl", **params).text)
    parquet, rows = _parquet_rows(_export(client, ws, headers, "parquet", **params).content)
    assert parquet.schema_arrow == PARQUET_SCHEMA
    assert [r["id"] for r in rows] == [r["id"] for r in jsonl]
    assert rows == jsonl
    return parquet


@pytest.fixture
def busy(clickhouse_settings):
    """A workspace of 250 events over 60 days, exported in 10-row chunks (JSONL, CSV) and 1,000-row row groups."""
    ws = f"ws_parquet_{uuid.uuid4().hex[:6]}"
    store_directly(clickhouse_settings,
                   EventGenerator(seed=15).history([ws], EVENTS, START, START + timedelta(days=60)))
    return api_client(_small_chunks(clickhouse_settings)), ws, bearer(clickhouse_settings, ws)


def test_parquet_equals_jsonl_for_filter_combinations_and_row_groups_follow_their_setting(busy):
    client, ws, headers = busy
    whole = _jsonl_as_rows(_export(client, ws, headers, "jsonl").text)
    action, target_kind, category = whole[5]["action"], whole[7]["target_kind"], whole[9]["category"]
    actor = whole[-1]["actor_display"][:4]  # the oldest row: inside the until below
    combinations: list[dict[str, str]] = [
        {},
        {"category": category},
        {"action": action},
        {"target_kind": target_kind, "since": "2026-01-15"},
        {"actor": actor, "until": "2026-02-10T12:00:00+02:00"},
        {"category": category, "since": "2026-01-10", "until": "2026-02-20"},
    ]
    for params in combinations:
        _assert_groups_within(_same_as_jsonl(client, ws, headers, **params), GROUP)
    whole_file = _same_as_jsonl(client, ws, headers)
    assert whole_file.metadata.num_rows == EVENTS
    _assert_groups_within(whole_file, GROUP)
    assert max(_row_groups(whole_file)) > CHUNK  # the row group setting, not the JSONL chunk, sizes them


@settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(chunk_rows=st.integers(min_value=1, max_value=80), row_group_rows=st.integers(min_value=1, max_value=300))
def test_row_groups_follow_their_setting_on_the_real_engine_whatever_the_chunk(busy, chunk_rows, row_group_rows):
    client, ws, headers = busy
    settings_ = api_context(client).settings

    def export(chunk: int) -> bytes:
        exporter = EventExporter(get_client(settings_.clickhouse.dsn), settings_.events_table, chunk_rows=chunk,
                                 row_group_rows=row_group_rows)
        return b"".join(exporter.chunks(ws, EventFilters(), "parquet"))

    body = export(chunk_rows)
    parquet = pq.ParquetFile(io.BytesIO(body))
    _assert_groups_within(parquet, row_group_rows)
    assert export(chunk_rows + 7) == body  # the chunk size of JSONL/CSV changes nothing in the file
    ids = parquet.read(columns=["id"]).column("id").to_pylist()
    assert ids == [row["id"] for row in _jsonl_as_rows(_export(client, ws, headers, "jsonl").text)]


def test_parquet_response_is_named_and_typed(busy):
    client, ws, headers = busy
    response = _export(client, ws, headers, "parquet", category="members")
    assert response.headers["content-type"] == "application/vnd.apache.parquet"
    disposition = response.headers["content-disposition"]
    assert disposition.startswith(f'attachment; filename="audit-{ws}-') and disposition.endswith('.parquet"')
    assert response.content[:4] == b"PAR1" and response.content[-4:] == b"PAR1"
    assert response.headers["x-export-snapshot"]


def test_two_events_centuries_apart_and_payload_text_exact(clickhouse_settings):
    ws = f"ws_parquet_quiet_{uuid.uuid4().hex[:6]}"
    gen = EventGenerator(seed=3)
    events = [dataclasses.replace(gen.event(ws, t), id=uuid.uuid4())
              for t in (datetime(1901, 2, 3, 4, 5, 6, 789012, tzinfo=UTC), datetime(2298, 11, 30, tzinfo=UTC))]
    store_directly(clickhouse_settings, events)
    client = api_client(clickhouse_settings)
    headers = bearer(clickhouse_settings, ws)
    _same_as_jsonl(client, ws, headers)
    table = pq.read_table(io.BytesIO(_export(client, ws, headers, "parquet").content))
    assert table.column("occurred_at").to_pylist() == [datetime(2298, 11, 30, tzinfo=UTC),
                                                       datetime(1901, 2, 3, 4, 5, 6, 789012, tzinfo=UTC)]
    assert table.column("id").to_pylist() == [str(events[1].id), str(events[0].id)]


@pytest.mark.parametrize("params", [{"since": "2300-01-01"}, {"action": "MEMBER_ROLE_CHANGED"}])
def test_an_empty_export_is_a_valid_parquet_file_with_zero_rows(clickhouse_settings, params):
    ws = f"ws_parquet_empty_{uuid.uuid4().hex[:6]}"
    if "since" in params:  # rows exist, none match
        store_directly(clickhouse_settings, EventGenerator(seed=2).history([ws], 5, START, START + timedelta(days=1)))
    client = api_client(clickhouse_settings)
    response = _export(client, ws, bearer(clickhouse_settings, ws), "parquet", **params)
    parquet = pq.ParquetFile(io.BytesIO(response.content))
    assert parquet.metadata.num_rows == 0 and parquet.schema_arrow == PARQUET_SCHEMA
    assert parquet.read().num_rows == 0


def test_the_schema_is_the_documented_one():
    assert PARQUET_SCHEMA.field("id").type == pa.string()
    assert PARQUET_SCHEMA.field("occurred_at").type == pa.timestamp("us", tz="UTC")
    assert PARQUET_SCHEMA.field("payload").type == pa.string()
    assert PARQUET_SCHEMA.names == ["id", "workspace_id", "occurred_at", "action", "category", "actor_kind",
                                    "actor_id", "actor_display", "target_kind", "target_id", "target_display",
                                    "payload", "ip", "user_agent", "request_id", "service"]


def test_an_unknown_format_is_still_a_clear_400(busy):
    client, ws, headers = busy
    for value in ("xml", "PARQUET", "parq"):
        response = client.get(f"/v1/workspaces/{ws}/audit/export", headers=headers, params={"format": value})
        assert response.status_code == 400, response.text
        body = response.json()
        assert body["field"] == "format" and "parquet" in body["message"] and "jsonl" in body["message"]
        link = client.post(f"/v1/workspaces/{ws}/audit/export-links", headers=headers, params={"format": value})
        assert link.status_code == 400 and link.json()["field"] == "format"


def test_a_parquet_download_link_works_once_with_its_filters(busy):
    client, ws, headers = busy
    url = client.post(f"/v1/workspaces/{ws}/audit/export-links", headers=headers,
                      params={"format": "parquet", "category": "members"}).json()["url"]
    first = client.get(url)
    assert first.status_code == 200
    assert first.headers["content-type"] == "application/vnd.apache.parquet"
    table = pq.read_table(io.BytesIO(first.content))
    direct = _jsonl_as_rows(_export(client, ws, headers, "jsonl", category="members").text)
    assert table.column("id").to_pylist() == [r["id"] for r in direct] and table.num_rows > 0
    assert set(table.column("category").to_pylist()) == {"members"}
    second = client.get(url)
    assert second.status_code == 410 and second.json()["code"] == "link_used"
