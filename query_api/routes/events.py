"""Audit events of one workspace: filtered pages, one event, the export."""

from __future__ import annotations

import logging
import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from query_api.cursor import Cursor, Position
from query_api.deps import ClientDep, ContextDep, CurrentUser
from query_api.errors import InvalidCursor, InvalidParameter, NotFound
from query_api.export import ExportFormat
from query_api.export_run import ExportRequest, stream_export
from query_api.filters import FILTER_NAMES, EventFilters, parse_filters, search_limits
from query_api.models import ErrorOut, EventOut, EventPage, SearchTermOut
from query_api.strict import only_params

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/v1/workspaces/{workspace_id}/audit", tags=["audit events"])

ERRORS: dict[int | str, dict[str, object]] = {
    400: {"model": ErrorOut, "description": "A parameter, filter or cursor that cannot be used (named in `field`)"},
    401: {"model": ErrorOut, "description": "No valid bearer token"},
    403: {"model": ErrorOut, "description": "Not an owner or admin of this workspace"},
    # Declared so that the framework's own 422 shape is not: every 4xx has the ErrorOut body.
    "4XX": {"model": ErrorOut, "description": "Any other client error, same body"},
}
LIST_PARAMS = (*FILTER_NAMES, "limit", "cursor")
EXPORT_PARAMS = (*FILTER_NAMES, "format")
FORMAT_HELP = ("jsonl (one JSON object a line), csv (every field quoted) or parquet (one row group a chunk, "
               "id and payload as text)")

WorkspaceId = Annotated[
    str, Path(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:-]+$", description="Workspace id")
]


class FilterQuery(BaseModel):
    """The filters a listing, an export and an export link all take, as query parameters."""

    category: str | None = Field(None, max_length=64, description="A category chip key; 'all' or none for all")
    actor: str | None = Field(
        None, max_length=1000, description="Case-insensitive substring of the actor's email or token name"
    )
    target_kind: str | None = Field(None, max_length=64, description="A target kind key")
    action: str | None = Field(None, max_length=128, description="An exact action name")
    since: str | None = Field(
        None, max_length=64, examples=["2026-03-01", "2026-03-01T09:30:00+02:00", "0001-01-01"],
        description="From this date (start of the UTC day) or datetime with an offset, inclusive; "
        "years 0001-9999",
    )
    until: str | None = Field(
        None, max_length=64, examples=["2026-03-31", "2026-03-31T18:00:00Z", "9999-12-31"],
        description="Up to this date (end of the UTC day, inclusive) or datetime with an offset, inclusive; "
        "years 0001-9999",
    )
    q: str | None = Field(
        None, max_length=10_000, examples=['int_github -"role changed" actor:alex@ ip:10.0.'],
        description="Free-text search: case-insensitive substrings, ANDed; \"a phrase\", -excluded, and "
        "qualifiers actor:, action:, target:, ip:, request: (README, Search). Length and term count are "
        "bounded by the settings",
    )

    def given(self) -> dict[str, str]:
        """The filters that were set, by name."""
        return {k: v for k, v in self.model_dump().items() if v is not None}


Filters = Annotated[FilterQuery, Query()]


def read_filters(ctx: ContextDep, query: FilterQuery) -> EventFilters:
    """The request's filters, checked, with ``q`` bounded by the settings (every endpoint that filters uses it)."""
    return parse_filters(ctx.catalog, **query.model_dump(), search_limits=search_limits(ctx.settings.api))


def _resolve(
    ctx: ContextDep, workspace_id: str, cursor: str | None, limit: int | None, query: FilterQuery
) -> tuple[EventFilters, int, Position | None]:
    """The filters, page size and position of a request, checking a cursor against the filters given."""
    filters = read_filters(ctx, query)
    if limit is not None and not 1 <= limit <= ctx.settings.api.max_limit:
        raise InvalidParameter(f"limit must be between 1 and {ctx.settings.api.max_limit}.", "limit")
    if cursor is None:
        return filters, limit or 50, None
    decoded: Cursor = ctx.cursors.decode(cursor, workspace_id)
    if not filters.is_empty and filters.canonical() != decoded.filters.canonical():
        raise InvalidCursor(
            "This cursor belongs to a different set of filters. Keep the filters of the first page, "
            "or drop the cursor to start a new search.", "cursor"
        )
    return decoded.filters, limit or decoded.limit, decoded.after


@router.get("/events", response_model=EventPage, responses=ERRORS, summary="List audit events, newest first",
            dependencies=[Depends(only_params(*LIST_PARAMS))])
def list_events(
    ctx: ContextDep,
    user: CurrentUser,
    workspace_id: WorkspaceId,
    query: Filters,
    limit: Annotated[int | None, Query(ge=1, le=200, description="Rows per page, 1-200 (default 50)")] = None,
    cursor: Annotated[str | None, Query(max_length=4096, description="next_cursor of the previous page")] = None,
) -> Response:
    """One page of the workspace's audit events; all filters compose."""
    user.require_reader(workspace_id)
    filters, size, after = _resolve(ctx, workspace_id, cursor, limit, query)
    events, more = ctx.reader.page(workspace_id, filters, size, after)
    next_cursor = None
    if more and events:
        last = events[-1]
        next_cursor = ctx.cursors.encode(
            Cursor(workspace_id, filters, size, Position(last["occurred_at"], uuid.UUID(last["id"])))
        )
    page = EventPage(
        data=[EventOut.model_validate(e) for e in events],
        next_cursor=next_cursor,
        limit=size,
        filters=filters.echo(),
        highlights=[SearchTermOut(text=t.value, fields=list(t.fields))
                    for t in (filters.q.highlights if filters.q else ())],
    )
    # Already validated: pydantic writes the JSON itself (0.1 ms for 50 events), where FastAPI would
    # validate the page again and encode it through jsonable_encoder (2.1 ms; docs/performance.md).
    return Response(page.model_dump_json(), media_type="application/json")


@router.get("/events/{event_id}", response_model=EventOut, responses={**ERRORS, 404: {"model": ErrorOut}},
            summary="One audit event", dependencies=[Depends(only_params())])
def get_event(ctx: ContextDep, user: CurrentUser, workspace_id: WorkspaceId, event_id: uuid.UUID) -> EventOut:
    """One event by id, with its full payload."""
    user.require_reader(workspace_id)
    event = ctx.reader.one(workspace_id, event_id)
    if event is None:
        raise NotFound(f"No audit event {event_id} in workspace {workspace_id}.", "event_id")
    return EventOut.model_validate(event)


@router.get(
    "/export",
    responses={
        **ERRORS,
        200: {
            "description": "The filtered history, newest first, as of the export's start (the snapshot time is "
            "in X-Export-Snapshot). If the store fails mid-way the transfer is aborted (no final chunk); a "
            "JSONL body then ends with an `export_error` line that has no line end, a Parquet body has no "
            "footer (no reader opens it).",
            "content": {"application/x-ndjson": {}, "text/csv": {}, "application/vnd.apache.parquet": {}},
        },
    },
    response_class=StreamingResponse,
    summary="Export the filtered history (JSONL, CSV or Parquet)",
    dependencies=[Depends(only_params(*EXPORT_PARAMS))],
)
def export_events(
    ctx: ContextDep,
    user: CurrentUser,
    client: ClientDep,
    workspace_id: WorkspaceId,
    query: Filters,
    format: Annotated[ExportFormat, Query(description=FORMAT_HELP)] = "jsonl",
) -> StreamingResponse:
    """Every event matching the filters, streamed; equal to all pages of the list concatenated."""
    user.require_reader(workspace_id)
    filters = read_filters(ctx, query)
    return stream_export(ctx, ExportRequest(workspace_id, user, format, filters, client, via="bearer"))
