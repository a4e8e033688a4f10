"""Download links for the export, so a browser can save a large export straight to disk.

The export needs ``Authorization: Bearer``; a plain link cannot send that
header, and fetching the whole export into page memory defeats its
bounded-memory streaming. So the page first asks for a link (with the
header, through the same owner/admin check and filter validation as the
export), then lets the browser download it. The link carries a ticket, not
the bearer token: HMAC-signed, valid for ``TICKET_SECONDS``, bound to one
user, workspace, format and set of filters, and good for nothing else.
"""

from __future__ import annotations

import logging
import time
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

from query_api.deps import ContextDep, CurrentUser
from query_api.errors import NotAuthenticated
from query_api.export import ExportFormat
from query_api.filters import parse_filters
from query_api.routes.events import ERRORS, FilterQuery, Filters, WorkspaceId, export_events
from query_api.security import Principal
from query_api.signing import SignedJson

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/v1/workspaces/{workspace_id}/audit", tags=["audit events"])

TICKET_SECONDS = 60


class ExportLinkOut(BaseModel):
    url: str
    expires_in: int


class TicketSigner:
    """Signs and checks download tickets with a key of their own (derived from the cursor secret)."""

    def __init__(self, secret: str) -> None:
        self._tokens = SignedJson(secret, "auditlog-export-ticket")

    def issue(self, claims: dict[str, object]) -> str:
        return self._tokens.dumps(claims)

    def check(self, ticket: str, workspace_id: str) -> dict[str, object]:
        """The ticket's claims; raises NotAuthenticated if it is malformed, forged, expired or for elsewhere."""
        invalid = NotAuthenticated("This download link is not valid or has expired; press Export again.")
        try:
            claims = self._tokens.loads(ticket)
        except ValueError:  # MalformedToken, ForgedToken
            raise invalid from None
        if not isinstance(claims, dict) or claims.get("ws") != workspace_id:
            raise invalid
        if not isinstance(claims.get("exp"), int) or claims["exp"] < time.time():
            raise invalid
        return claims


@router.post("/export-links", response_model=ExportLinkOut, responses=ERRORS,
             summary="A short-lived download link for the export (for browsers)")
def create_export_link(
    ctx: ContextDep,
    user: CurrentUser,
    workspace_id: WorkspaceId,
    query: Filters,
    format: Annotated[ExportFormat, Query(description="jsonl or csv")] = "jsonl",
) -> ExportLinkOut:
    """Check access and filters now, so that a bad question fails here with its message, not in the download."""
    user.require_reader(workspace_id)
    parse_filters(ctx.catalog, **query.model_dump())
    ticket = TicketSigner(ctx.settings.api.cursor_secret).issue(
        {"ws": workspace_id, "sub": user.user_id, "email": user.email, "role": user.role_in(workspace_id),
         "fmt": format, "f": query.given(), "exp": int(time.time()) + TICKET_SECONDS}
    )
    url = f"/v1/workspaces/{workspace_id}/audit/export-downloads?{urlencode({'ticket': ticket})}"
    return ExportLinkOut(url=url, expires_in=TICKET_SECONDS)


@router.get("/export-downloads", response_class=StreamingResponse, responses=ERRORS,
            summary="Download the export a link was made for")
def download_export(
    ctx: ContextDep,
    workspace_id: WorkspaceId,
    ticket: Annotated[str, Query(max_length=8192, description="The ticket from POST export-links")],
) -> StreamingResponse:
    """The same stream as GET export, for the user, format and filters the ticket names."""
    claims = TicketSigner(ctx.settings.api.cursor_secret).check(ticket, workspace_id)
    principal = Principal(user_id=str(claims["sub"]), email=str(claims["email"]),
                          roles={workspace_id: str(claims["role"])})
    raw = claims.get("f")
    query = FilterQuery.model_validate(raw if isinstance(raw, dict) else {})
    fmt: ExportFormat = "csv" if claims.get("fmt") == "csv" else "jsonl"
    return export_events(ctx, principal, workspace_id, query, fmt)
