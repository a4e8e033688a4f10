"""Request dependencies as ``Annotated`` aliases."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request

from query_api.context import ApiContext
from query_api.security import Principal


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
