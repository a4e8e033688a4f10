"""Request dependencies as ``Annotated`` aliases."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Header, Request

from query_api.context import ApiContext
from query_api.security import Principal

# A request id a client or proxy sends is kept only if it is this plain (it goes into audit records).
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
MAX_USER_AGENT = 512


def get_context(request: Request) -> ApiContext:
    context: ApiContext = request.app.state.context
    return context


ContextDep = Annotated[ApiContext, Depends(get_context)]


def get_principal(
    context: ContextDep,
    authorization: Annotated[str | None, Header(description="Bearer <JWT>")] = None,
) -> Principal:
    return context.verifier.verify(authorization)


CurrentUser = Annotated[Principal, Depends(get_principal)]


@dataclass(frozen=True)
class ClientInfo:
    """Where a request came from, for the audit record of an export."""

    ip: str
    user_agent: str
    request_id: str


def get_client_info(request: Request) -> ClientInfo:
    """The peer address, user agent and request id (``X-Request-ID`` if sent and plain, else a new one).

    The address is the connection's peer; behind a proxy run uvicorn with
    ``--proxy-headers --forwarded-allow-ips=<proxy>`` so that it is the client's.
    """
    sent = request.headers.get("x-request-id", "").strip()
    request_id = sent if _REQUEST_ID.fullmatch(sent) else f"req_{uuid.uuid4().hex}"
    return ClientInfo(
        ip=request.client.host if request.client else "",
        user_agent=request.headers.get("user-agent", "")[:MAX_USER_AGENT],
        request_id=request_id,
    )


ClientDep = Annotated[ClientInfo, Depends(get_client_info)]
