"""Demo sign-in for the embedded run mode: the Audit page's "sign in as owner / admin / member".

Registered only when ``settings.api.demo_sign_in`` is true, which only
``auditlog up`` sets. Anywhere else the route does not exist (404), so a
deployment can never hand out tokens by accident; the page then asks for a
token instead.
"""

from __future__ import annotations

import logging
from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel

from config.settings import Settings
from producers.synthetic import DEMO_PEOPLE, demo_person
from query_api.deps import ContextDep
from query_api.security import issue_token

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/v1/demo", tags=["demo"], include_in_schema=False)

Role = Literal["owner", "admin", "member"]
# The people of the seeded history (producers/synthetic.py): same ids, same emails, same roles.
PEOPLE: dict[str, str] = DEMO_PEOPLE


def demo_tokens(settings: Settings) -> dict[str, str]:
    """Bearer tokens (a week long) for the reference workspace's demo people, by role."""
    ws = settings.demo.workspace_id
    return {
        role: issue_token(settings.api, user_id=person.id, email=person.display, roles={ws: role},
                          ttl_seconds=7 * 24 * 3600)
        for role in PEOPLE
        for person in [demo_person(ws, role)]
    }


class DemoAccount(BaseModel):
    role: str
    email: str


class DemoAccounts(BaseModel):
    workspace_id: str
    accounts: list[DemoAccount]


class DemoSession(BaseModel):
    workspace_id: str
    role: str
    email: str
    token: str


@router.get("/sign-in", response_model=DemoAccounts)
def demo_accounts(ctx: ContextDep) -> DemoAccounts:
    """Who one can sign in as; the page shows its demo buttons only when this answers."""
    ws = ctx.settings.demo.workspace_id
    return DemoAccounts(
        workspace_id=ws,
        accounts=[DemoAccount(role=role, email=demo_person(ws, role).display) for role in PEOPLE],
    )


@router.post("/sign-in", response_model=DemoSession)
def demo_sign_in(ctx: ContextDep, role: Role) -> DemoSession:
    """A bearer token for one of the reference workspace's demo people (POST: it mints a credential)."""
    ws = ctx.settings.demo.workspace_id
    logger.info("demo_sign_in workspace=%s role=%s", ws, role)
    return DemoSession(
        workspace_id=ws, role=role, email=demo_person(ws, role).display, token=demo_tokens(ctx.settings)[role]
    )
