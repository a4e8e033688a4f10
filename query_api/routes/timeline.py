"""The activity timeline of one workspace: event counts per time bucket, for the list's filters."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from query_api.deps import ContextDep, CurrentUser
from query_api.filters import FILTER_NAMES
from query_api.models import BucketOut, TimelineOut
from query_api.routes.events import ERRORS, Filters, WorkspaceId, read_filters
from query_api.strict import only_params
from query_api.timeline import TimelineReader

router = APIRouter(prefix="/v1/workspaces/{workspace_id}/audit", tags=["audit events"])


@router.get(
    "/timeline", response_model=TimelineOut, responses=ERRORS, summary="Event counts per time bucket",
    dependencies=[Depends(only_params(*FILTER_NAMES))],
)
def get_timeline(ctx: ContextDep, user: CurrentUser, workspace_id: WorkspaceId, query: Filters) -> TimelineOut:
    """How many events match the filters, per bucket, over ``since..until``.

    The same filters as the list, checked the same way, and the counts sum to the number of events
    the list pages through. A missing ``since``/``until`` is the workspace's first/last event (a
    workspace with no events answers no buckets). The bucket size is the smallest of 1m, 5m, 15m, 1h,
    6h, 1d, 1w, 1mo, 3mo, 1y, 10y that shows the range in at most ``AUDITLOG_API__TIMELINE_MAX_BUCKETS``
    bars; buckets are aligned in UTC (weeks start on Monday) and empty ones are present with count 0.
    """
    user.require_reader(workspace_id)
    filters = read_filters(ctx, query)
    with ctx.pages.lease() as client:  # a handle of the pages' pool, closed if the query fails
        reader = TimelineReader(client, ctx.settings.events_table, ctx.settings.api.timeline_max_buckets)
        answer = reader.timeline(workspace_id, filters)
    return TimelineOut(
        bucket=answer.size.label if answer.size else None,
        since=answer.since,
        until=answer.until,
        total=answer.total,
        buckets=[BucketOut(start=b.start, end=b.end, count=b.count) for b in answer.buckets],
        filters=filters.echo(),
    )
