"""Response models of the query API (separate from the table's rows)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

PayloadValue = None | bool | int | float | str | list[str]


class PartyOut(BaseModel):
    kind: str
    id: str
    display: str = Field(description="The actor's email or token name; the target's name")


class PayloadOut(BaseModel):
    before: dict[str, PayloadValue] | None = Field(default=None, description="The changed fields before")
    after: dict[str, PayloadValue] | None = Field(default=None, description="The changed fields after")


class ContextOut(BaseModel):
    ip: str = ""
    user_agent: str = ""
    request_id: str = ""
    service: str = ""


class EventOut(BaseModel):
    id: str = Field(description="UUIDv7 assigned by the producer")
    workspace_id: str
    occurred_at: datetime = Field(description="UTC, microseconds")
    action: str
    category: str
    actor: PartyOut
    target: PartyOut
    payload: PayloadOut
    context: ContextOut


class SearchTermOut(BaseModel):
    text: str = Field(description="A value the search looked for, lower-cased: mark it where it occurs")
    fields: list[str] = Field(description="The event fields it was looked for in (column names)")


class EventPage(BaseModel):
    data: list[EventOut]
    next_cursor: str | None = Field(
        description="Pass as ?cursor= to get the next, older page with the same filters; null on the last page"
    )
    limit: int
    filters: dict[str, str] = Field(description="The filters this page answers, as they were given")
    highlights: list[SearchTermOut] = Field(
        default_factory=list, description="The terms of q that every row holds (not the excluded ones); empty "
        "without q")


class BucketOut(BaseModel):
    start: datetime = Field(description="The bucket's first moment (UTC, aligned), inclusive")
    end: datetime = Field(description="The next bucket's start, exclusive")
    count: int = Field(description="Events matching the filters in the bucket (0 for an empty one)")


class TimelineOut(BaseModel):
    bucket: str | None = Field(
        description="The bucket size: 1m, 5m, 15m, 1h, 6h, 1d, 1w (from Monday), 1mo, 3mo, 1y or 10y; "
        "null when there is nothing to show"
    )
    since: datetime | None = Field(description="The range shown, first moment (inclusive, UTC)")
    until: datetime | None = Field(description="The range shown, last moment (inclusive, UTC)")
    total: int = Field(description="The sum of the counts: the number of events the list shows for these filters")
    buckets: list[BucketOut] = Field(description="Oldest first, contiguous, empty buckets included")
    filters: dict[str, str] = Field(description="The filters this answer counts, as they were given")


class LabelOut(BaseModel):
    key: str
    label: str


class ActionOut(BaseModel):
    name: str
    category: str
    target_kind: str
    description: str


class CatalogOut(BaseModel):
    categories: list[LabelOut]
    target_kinds: list[LabelOut]
    actions: list[ActionOut]


class ErrorOut(BaseModel):
    """The one body of every 4xx answer (and of a 5xx the API itself raises)."""

    status: int = Field(description="The HTTP status, repeated for clients that only keep the body")
    code: str = Field(description="A machine-readable code, e.g. invalid_filter, unknown_parameter, no_access")
    message: str = Field(description="What went wrong and what to do, for a person")
    field: str | None = Field(default=None, description="The parameter at fault, when there is one")


class HealthOut(BaseModel):
    status: str
    checks: dict[str, str] = {}
