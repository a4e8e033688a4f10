"""Download links for the export, so a browser can save a large export straight to disk.

The export needs ``Authorization: Bearer``; a plain link cannot send that
header, and fetching the whole export into page memory defeats its
bounded-memory streaming. So the page first asks for a link (with the
header, through the same owner/admin check and filter validation as the
export), then lets the browser download it. The link carries a ticket, not
the bearer token (see query_api/tickets.py: signed, valid for
``TICKET_SECONDS``, bound to one user, workspace, format and set of filters,
single-use).

One way to pass the filters: query parameters, exactly as the export takes
them (``POST …/export-links?format=csv&category=members``). A request body
is refused (400 ``unexpected_body``) rather than ignored, so a JSON body with
filters can never produce a link for the unfiltered log.
"""

from __future__ import annotations

import logging
import time
import uuid
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

from query_api.deps import ClientDep, ContextDep, CurrentUser
from query_api.errors import NotAuthenticated
from query_api.export import EXPORT_FORMATS, ExportFormat
from query_api.export_run import ExportRequest, stream_export
from query_api.models import ErrorOut
from query_api.routes.events import ERRORS, EXPORT_PARAMS, FilterQuery, Filters, WorkspaceId, read_filters
from query_api.security import Principal
from query_api.strict import no_body, only_params
from query_api.tickets import TICKET_SECONDS, TicketSigner

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/v1/workspaces/{workspace_id}/audit", tags=["audit events"])


class ExportLinkOut(BaseModel):
    url: str
    expires_in: int


@router.post("/export-links", response_model=ExportLinkOut, responses=ERRORS,
             summary="A short-lived, single-use download link for the export (for browsers)",
             dependencies=[Depends(only_params(*EXPORT_PARAMS)),
                           Depends(no_body("POST …/export-links?format=csv&category=members"))])
def create_export_link(
    ctx: ContextDep,
    user: CurrentUser,
    workspace_id: WorkspaceId,
    query: Filters,
    format: Annotated[ExportFormat, Query(description="jsonl, csv or parquet")] = "jsonl",
) -> ExportLinkOut:
    """Check access and filters now, so that a bad question fails here with its message, not in the download.

    The filters are query parameters, as for GET export; a request body is refused.
    """
    user.require_reader(workspace_id)
    read_filters(ctx, query)
    ticket = TicketSigner(ctx.settings.api.cursor_secret).issue(
        {"ws": workspace_id, "sub": user.user_id, "email": user.email, "role": user.role_in(workspace_id),
         "fmt": format, "f": query.given(), "exp": int(time.time()) + TICKET_SECONDS, "jti": uuid.uuid4().hex}
    )
    url = f"/v1/workspaces/{workspace_id}/audit/export-downloads?{urlencode({'ticket': ticket})}"
    return ExportLinkOut(url=url, expires_in=TICKET_SECONDS)


@router.get("/export-downloads", response_class=StreamingResponse,
            responses={**ERRORS, 410: {"model": ErrorOut, "description": "The link was already used"}},
            summary="Download the export a link was made for (once)",
            dependencies=[Depends(only_params("ticket"))])
def download_export(
    ctx: ContextDep,
    client: ClientDep,
    workspace_id: WorkspaceId,
    ticket: Annotated[str, Query(max_length=8192, description="The ticket from POST export-links")],
) -> StreamingResponse:
    """The same stream as GET export, for the user, format and filters the ticket names; a second use is 410."""
    claims = TicketSigner(ctx.settings.api.cursor_secret).check(ticket, workspace_id)
    principal = Principal(user_id=str(claims["sub"]), email=str(claims["email"]),
                          roles={workspace_id: str(claims["role"])})
    principal.require_reader(workspace_id)
    raw = claims.get("f")
    try:
        query = FilterQuery.model_validate(raw if isinstance(raw, dict) else {})
    except ValueError:
        raise NotAuthenticated("This download link is not valid; press Export again.", "ticket") from None
    filters = read_filters(ctx, query)
    fmt: ExportFormat = next((f for f in EXPORT_FORMATS if f == claims.get("fmt")), "jsonl")
    ctx.used_tickets.claim(str(claims["jti"]), float(claims["exp"]))  # type: ignore[arg-type]
    return stream_export(ctx, ExportRequest(workspace_id, principal, fmt, filters, client, via="link"))
