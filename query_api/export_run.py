"""One export as the API runs it: validated before the first byte, complete or visibly failed, recorded.

- Everything that can be refused is refused before the response starts
  (filters, format, access, and the snapshot query, so an engine that does
  not answer gives a 503 with a body, not a cut stream).
- If the engine fails mid-stream the response is *aborted*: the chunked
  transfer never gets its final empty chunk, so curl exits with 18
  ("transfer closed with outstanding read data remaining"), requests/httpx
  raise, a browser marks the download failed. A JSONL export also ends with
  a last line ``{"export_error": {...}}`` without a line end (a complete
  JSONL export is empty or ends with a line end). A CSV export is cut after
  its last whole row. A Parquet export is cut after its last whole row
  group, without the footer, so no Parquet reader opens it.
- The export's own audit event, ``WORKSPACE_AUDIT_EXPORTED``, is emitted
  when the stream ends: who (actor = the user's id and email), from where
  (the request context: IP, user agent, request id, the API's service
  name), the format, the filters as given, ``outcome`` (completed / failed),
  ``rows_written``, ``bytes_written``, ``snapshot_at`` and ``via``
  (bearer / link).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson
from fastapi.responses import StreamingResponse

from query_api.context import ApiContext
from query_api.deps import ClientInfo
from query_api.export import EventExporter, ExportFormat, ExportProgress, Snapshot
from query_api.filters import EventFilters
from query_api.security import Principal
from schemas.event import Actor, PayloadMap, RequestContext

logger = logging.getLogger(__name__)

MEDIA_TYPES = {"csv": "text/csv; charset=utf-8", "jsonl": "application/x-ndjson",
               "parquet": "application/vnd.apache.parquet"}


@dataclass(frozen=True)
class ExportRequest:
    """Who asked for which export, from where, and how (``bearer`` header or a download ``link``)."""

    workspace_id: str
    principal: Principal
    fmt: ExportFormat
    filters: EventFilters
    client: ClientInfo
    via: str


def stream_export(ctx: ApiContext, request: ExportRequest) -> StreamingResponse:
    """The streaming response for a validated export request (access already checked)."""
    exporter = EventExporter(ctx.exports, ctx.settings.events_table, chunk_rows=ctx.settings.api.export_chunk_rows,
                             max_threads=ctx.settings.api.export_max_threads,
                             row_group_rows=ctx.settings.api.export_parquet_row_group_rows)
    snapshot = exporter.snapshot(request.workspace_id, request.filters)
    progress = ExportProgress()
    logger.info("export_started workspace=%s user=%s format=%s via=%s request_id=%s rows_expected=%d",
                request.workspace_id, request.principal.user_id, request.fmt, request.via,
                request.client.request_id, snapshot.count)
    chunks = exporter.chunks(request.workspace_id, request.filters, request.fmt, progress, snapshot)
    body = accountable(chunks, request.fmt, progress,
                       lambda outcome, failure: record_export(ctx, request, snapshot, progress, outcome, failure))
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return StreamingResponse(
        body,
        media_type=MEDIA_TYPES[request.fmt],
        headers={
            "Content-Disposition": f'attachment; filename="audit-{request.workspace_id}-{stamp}.{request.fmt}"',
            "X-Request-ID": request.client.request_id,
            "X-Export-Snapshot": snapshot.taken_at,
        },
    )


def accountable(chunks: Iterator[bytes], fmt: str, progress: ExportProgress,
                finish: Callable[[str, str], None]) -> Iterator[bytes]:
    """``chunks``, then ``finish(outcome, failure)`` however the stream ends.

    On an error it hands on the JSONL error line (no line end) and re-raises,
    so the server aborts the response. A stream closed early by the client
    (GeneratorExit) is recorded as failed too.
    """
    outcome, failure = "failed", "the client stopped reading before the end"
    try:
        yield from chunks
        outcome, failure = "completed", ""
    except Exception as err:
        failure = f"{type(err).__name__}: the store failed mid-export"
        logger.error("export_failed rows_written=%d bytes_written=%d error=%s", progress.rows, progress.bytes,
                     type(err).__name__, exc_info=True)
        if fmt == "jsonl":
            yield orjson.dumps({"export_error": {
                "message": "The export failed before its end; the lines above are an incomplete prefix. "
                           "Export again.",
                "rows_written": progress.rows,
            }})
        raise
    finally:
        finish(outcome, failure)


def record_export(ctx: ApiContext, request: ExportRequest, snapshot: Snapshot, progress: ExportProgress,
                  outcome: str, failure: str) -> None:
    """Auditors must see who took the data, from where, and how much: the export is itself an audit event."""
    given = request.filters.echo()
    logger.info("export_finished workspace=%s user=%s format=%s via=%s outcome=%s rows_written=%d "
                "bytes_written=%d request_id=%s ip=%s filters=%s", request.workspace_id,
                request.principal.user_id, request.fmt, request.via, outcome, progress.rows, progress.bytes,
                request.client.request_id, request.client.ip, given)
    if ctx.audit_producer is None:
        return
    after: PayloadMap = {
        "format": request.fmt, "outcome": outcome, "rows_written": progress.rows,
        "bytes_written": progress.bytes, "via": request.via, "snapshot_at": snapshot.taken_at,
    }
    if failure:
        after["failure"] = failure
    after.update({f"filter_{k}": v for k, v in given.items()})
    context = RequestContext(ip=request.client.ip or None, user_agent=request.client.user_agent or None,
                             request_id=request.client.request_id, service=ctx.settings.api.service_name)
    try:
        ctx.audit_producer.emit(
            workspace_id=request.workspace_id,
            action="WORKSPACE_AUDIT_EXPORTED",
            actor=Actor("user", request.principal.user_id, request.principal.email),
            target_id=request.workspace_id,
            target_display=request.workspace_id,
            after=after,
            context=context,
        )
    except Exception:  # the export has been served; losing its record must be loud, not fatal
        logger.error("export_record_failed workspace=%s request_id=%s", request.workspace_id,
                     request.client.request_id, exc_info=True)
