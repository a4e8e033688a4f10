"""Audit events of one workspace: filtered pages, one event, the export."""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Path, Query
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from query_api.cursor import Cursor, Position
from query_api.deps import ContextDep, CurrentUser
from query_api.errors import InvalidCursor, InvalidFilter, NotFound
from query_api.export import EventExporter, ExportFormat
from query_api.filters import EventFilters, parse_filters
from query_api.models import ErrorOut, EventOut, EventPage
from schemas.event import Actor

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/v1/workspaces/{workspace_id}/audit", tags=["audit events"])

ERRORS: dict[int | str, dict[str, object]] = {
    400: {"model": ErrorOut, "description": "A filter or cursor that cannot be used"},
    401: {"model": ErrorOut, "description": "No valid bearer token"},
    403: {"model": ErrorOut, "description": "Not an owner or admin of this workspace"},
    422: {"model": ErrorOut, "description": "A parameter of the wrong type or out of range"},
}

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
        None, max_length=64,
        description="From this date (start of the UTC day) or datetime with offset, inclusive",
    )
    until: str | None = Field(
        None, max_length=64,
        description="Up to this date (end of the UTC day, inclusive) or datetime with offset",
    )

    def given(self) -> dict[str, str]:
        """The filters that were set, by name."""
        return {k: v for k, v in self.model_dump().items() if v is not None}


Filters = Annotated[FilterQuery, Query()]


def _resolve(
    ctx: ContextDep, workspace_id: str, cursor: str | None, limit: int | None, query: FilterQuery
) -> tuple[EventFilters, int, Position | None]:
    """The filters, page size and position of a request, checking a cursor against the filters given."""
    filters = parse_filters(ctx.catalog, **query.model_dump())
    if limit is not None and not 1 <= limit <= ctx.settings.api.max_limit:
        raise InvalidFilter(f"limit must be between 1 and {ctx.settings.api.max_limit}.")
    if cursor is None:
        return filters, limit or 50, None
    decoded: Cursor = ctx.cursors.decode(cursor, workspace_id)
    if not filters.is_empty and filters.canonical() != decoded.filters.canonical():
        raise InvalidCursor(
            "This cursor belongs to a different set of filters. Keep the filters of the first page, "
            "or drop the cursor to start a new search."
        )
    return decoded.filters, limit or decoded.limit, decoded.after


@router.get("/events", response_model=EventPage, responses=ERRORS, summary="List audit events, newest first")
def list_events(
    ctx: ContextDep,
    user: CurrentUser,
    workspace_id: WorkspaceId,
    query: Filters,
    limit: Annotated[int | None, Query(ge=1, le=200, description="Rows per page, 1-200 (default 50)")] = None,
    cursor: Annotated[str | None, Query(max_length=4096, description="next_cursor of the previous page")] = None,
) -> EventPage:
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
    return EventPage(
        data=[EventOut.model_validate(e) for e in events],
        next_cursor=next_cursor,
        limit=size,
        filters=filters.canonical(),
    )


@router.get("/events/{event_id}", response_model=EventOut, responses={**ERRORS, 404: {"model": ErrorOut}},
            summary="One audit event")
def get_event(ctx: ContextDep, user: CurrentUser, workspace_id: WorkspaceId, event_id: uuid.UUID) -> EventOut:
    """One event by id, with its full payload."""
    user.require_reader(workspace_id)
    event = ctx.reader.one(workspace_id, event_id)
    if event is None:
        raise NotFound(f"No audit event {event_id} in workspace {workspace_id}.")
    return EventOut.model_validate(event)


@router.get(
    "/export",
    responses={
        **ERRORS,
        200: {
            "description": "The filtered history, newest first",
            "content": {"application/x-ndjson": {}, "text/csv": {}},
        },
    },
    response_class=StreamingResponse,
    summary="Export the filtered history (JSONL or CSV)",
)
def export_events(
    ctx: ContextDep,
    user: CurrentUser,
    workspace_id: WorkspaceId,
    query: Filters,
    format: Annotated[ExportFormat, Query(description="jsonl (one JSON object a line) or csv")] = "jsonl",
) -> StreamingResponse:
    """Every event matching the filters, streamed; equal to all pages of the list concatenated."""
    user.require_reader(workspace_id)
    filters = parse_filters(ctx.catalog, **query.model_dump())
    _record_export(ctx, user.user_id, user.email, workspace_id, format, filters)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    media = "text/csv" if format == "csv" else "application/x-ndjson"
    return StreamingResponse(
        EventExporter(ctx.client, ctx.settings.events_table).chunks(workspace_id, filters, format),
        media_type=media,
        headers={"Content-Disposition": f'attachment; filename="audit-{workspace_id}-{stamp}.{format}"'},
    )


def _record_export(ctx: ContextDep, user_id: str, email: str, workspace_id: str, fmt: str,
                   filters: EventFilters) -> None:
    """Auditors must see who took the data: the export itself is an audit event."""
    logger.info("audit_exported workspace=%s user=%s format=%s filters=%s",
                workspace_id, user_id, fmt, filters.canonical())
    if ctx.audit_producer is None:
        return
    after: dict[str, str | list[str] | None] = {"format": fmt}
    after.update({f"filter_{k}": v for k, v in filters.canonical().items()})
    ctx.audit_producer.emit(
        workspace_id=workspace_id,
        action="WORKSPACE_AUDIT_EXPORTED",
        actor=Actor("user", user_id, email),
        target_id=workspace_id,
        target_display=workspace_id,
        after=after,  # type: ignore[arg-type]
    )
