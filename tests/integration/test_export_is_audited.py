"""Who took the data: an export is itself recorded as an audit event, through the real pipeline.

The record says who (actor), from where (IP, user agent, request id, the
API's service name), what (format, filters as given) and how it ended
(completed or failed, rows written). A failed export is also visible to the
client: the transfer is aborted, a JSONL body ends with an error line and a
Parquet body has no footer (pyarrow cannot open it).
"""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pyarrow as pa
import pyarrow.ipc
import pyarrow.parquet as pq
import pytest

from clickhouse.pool import SharedClient
from config.settings import Settings
from producers.producer import AuditProducer
from producers.synthetic import EventGenerator
from query_api.app import build_context, create_app
from tests.support.pipeline import api_client, bearer, consume_until, store_directly
from tests.support.serving import serve

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse]

WS = "ws_exported"
START = datetime(2026, 4, 1, tzinfo=UTC)


def _records(client, settings: Settings, actor: str) -> list[dict[str, Any]]:
    """The export records made by ``actor`` (a substring of its email), newest first."""
    page = client.get(f"/v1/workspaces/{WS}/audit/events", headers=bearer(settings, WS),
                      params={"action": "WORKSPACE_AUDIT_EXPORTED", "actor": actor})
    assert page.status_code == 200, page.text
    records: list[dict[str, Any]] = page.json()["data"]
    return records


def _rows(response: httpx.Response, fmt: str) -> int:
    if fmt == "parquet":
        return int(pq.read_table(io.BytesIO(response.content)).num_rows)
    return len(response.text.splitlines()) - (fmt == "csv")  # CSV: a header line


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_an_export_is_recorded_with_who_from_where_and_how_it_ended(settings, fmt):
    store_directly(settings, EventGenerator(seed=8).history([WS], 50, START, START + timedelta(days=3)))
    with AuditProducer.from_settings(settings) as producer:
        client = api_client(settings, audit_producer=producer)
        response = client.get(f"/v1/workspaces/{WS}/audit/export",
                              headers={**bearer(settings, WS, "admin", user="usr_auditor"),
                                       "X-Request-ID": "req-from-the-client-42", "User-Agent": "auditor-cli/1.0"},
                              params={"format": fmt, "category": "members", "actor": "alex@",
                                      "until": "2026-06-30"})
        assert response.status_code == 200
        assert response.headers["x-request-id"] == "req-from-the-client-42"
        exported = _rows(response, fmt)
        producer.flush(10)
    consume_until(settings, 51)
    # The synthetic history may hold exports of its own people: ask for this one's.
    records = _records(client, settings, "usr_auditor@")
    assert len(records) == 1
    recorded = records[0]
    assert recorded["actor"] == {"kind": "user", "id": "usr_auditor", "display": "usr_auditor@example.com"}
    assert recorded["category"] == "workspace"
    assert recorded["context"] == {"ip": "testclient", "user_agent": "auditor-cli/1.0",
                                   "request_id": "req-from-the-client-42", "service": "auditlog-query-api"}
    after = recorded["payload"]["after"]
    assert after == {"format": fmt, "outcome": "completed", "rows_written": exported,
                     "bytes_written": len(response.content), "via": "bearer", "snapshot_at": after["snapshot_at"],
                     "filter_category": "members", "filter_actor": "alex@", "filter_until": "2026-06-30"}


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "parquet"])
def test_an_export_the_store_fails_mid_way_is_cut_visibly_and_recorded_failed(settings, fmt):
    store_directly(settings, EventGenerator(seed=8).history([WS], 50, START, START + timedelta(days=3)))
    # 10-row chunks and row groups, so the export has more than one; model_copy does not validate, and the
    # row group floor (1,000) guards long exports' memory, not this 50-row one.
    small = settings.model_copy(update={"api": settings.api.model_copy(
        update={"export_chunk_rows": 10, "export_parquet_row_group_rows": 10})})
    table, hidden = settings.events_table, f"{settings.events_table}_away"
    with AuditProducer.from_settings(settings) as producer:
        context = build_context(small, audit_producer=producer)
        engine = context.client
        real_raw_query = engine.raw_query
        calls = []

        def fail_after_first_chunk(*args, **kwargs):
            # A real engine failure: the table goes away after the first chunk, so the next query fails.
            result = real_raw_query(*args, **kwargs)
            calls.append(result)
            if len(calls) == 1:
                engine.command(f"RENAME TABLE {table} TO {hidden}")
            return result

        engine.raw_query = fail_after_first_chunk  # type: ignore[method-assign]
        context.exports = SharedClient(engine)  # the export reads through the patched client
        received = b""
        try:
            url = f"/v1/workspaces/{WS}/audit/export"
            headers = {**bearer(settings, WS), "X-Request-ID": "req-cut-1"}
            with serve(create_app(context), log_level="critical") as base, pytest.raises(httpx.HTTPError) as cut, \
                    httpx.stream("GET", base + url, params={"format": fmt}, headers=headers, timeout=30) as response:
                assert response.status_code == 200
                for piece in response.iter_bytes():
                    received += piece
        finally:
            engine.raw_query = real_raw_query  # type: ignore[method-assign]
            engine.command(f"RENAME TABLE {hidden} TO {table}")
        producer.flush(10)
    assert isinstance(cut.value, httpx.RemoteProtocolError | httpx.ReadError)  # the transfer is incomplete
    lines = received.split(b"\n")
    if fmt == "parquet":  # the magic and whole row groups, no footer: no reader opens it
        assert received[:4] == b"PAR1" and received[-4:] != b"PAR1"
        with pytest.raises(pa.ArrowInvalid):
            pq.ParquetFile(io.BytesIO(received))
        rows = pa.ipc.open_stream(calls[0]).read_all().num_rows  # one row group: the first chunk
    elif fmt == "jsonl":  # whole rows, then the error line with no line end
        rows = len(lines) - 1
        assert lines[-1].startswith(b'{"export_error":') and f'"rows_written":{rows}'.encode() in lines[-1]
    else:  # the header and whole rows
        rows = len(lines) - 2
        assert lines[-1] == b""
    assert 1 <= rows <= 10  # the first chunk, not the 50 rows
    consume_until(settings, 51)
    recorded = _records(api_client(settings), settings, "usr_test@")[0]
    assert recorded["context"]["request_id"] == "req-cut-1"
    after = recorded["payload"]["after"]
    assert after["outcome"] == "failed" and after["rows_written"] == rows and after["format"] == fmt
    assert "failed mid-export" in after["failure"]
