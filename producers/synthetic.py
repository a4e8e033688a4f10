"""Realistic synthetic audit events: the demo seed, integration tests and benchmarks share them.

A workspace has people, API tokens, an agent, integrations, repos and
pipelines; most of its history is routine machine traffic (routines claiming
repository runs, pipeline runs completing, membership syncs), with rarer
human changes (a member promoted, a tracker connected, a token rotated).
Events carry the payload a real service would send: the old role next to
the new one, the old token name next to the new one, an integration's id and
scopes.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from schemas.catalog import Catalog, load_catalog
from schemas.event import Actor, AuditEvent, RequestContext, Target, uuid7

ROLES = ("member", "admin", "owner", "viewer")
SCOPES = ("repo:read", "repo:write", "issues:read", "issues:write", "pipelines:run", "admin:read")

# Relative frequency of each action in a workspace's history; the rest of the catalog gets weight 1.
WEIGHTS: dict[str, int] = {
    "REPOSITORY_RUN_CLAIM": 260,
    "PIPELINE_RUN_COMPLETED": 220,
    "PIPELINE_RUN_STARTED": 120,
    "PIPELINE_RUN_FAILED": 35,
    "AGENT_REASSIGNMENT_QUEUED": 60,
    "GROUP_MEMBERSHIP_VOL_QUEUE": 45,
    "MEMBERSHIP_DEFAULTED": 30,
    "IMPROVEMENT_PROPOSED": 20,
    "CLARIFICATION_REQUESTED": 15,
    "API_TOKEN_ROTATED": 6,
    "MEMBER_ROLE_CHANGED": 5,
    "INVITE_SENT": 5,
    "INTEGRATION_SCOPES_CHANGED": 3,
    "TRACKER_CONNECTED": 2,
}


@dataclass(frozen=True)
class WorkspaceCast:
    """The people and things one workspace's events are about."""

    workspace_id: str
    people: tuple[Actor, ...]
    tokens: tuple[Actor, ...]
    agent: Actor
    integrations: tuple[tuple[str, str], ...]
    repos: tuple[tuple[str, str], ...]
    pipelines: tuple[tuple[str, str], ...]


FIRST_NAMES = ("alex", "sam", "priya", "jonas", "mei", "omar", "lucia", "noah", "ines", "kai", "zoe", "ravi")


def make_cast(workspace_id: str, rng: random.Random, people: int = 8) -> WorkspaceCast:
    domain = f"{workspace_id.replace('_', '-')}.example.com"
    names = rng.sample(FIRST_NAMES, k=min(people, len(FIRST_NAMES)))
    humans = tuple(Actor("user", f"usr_{rng.randrange(16**8):08x}", f"{n}@{domain}") for n in names)
    tokens = tuple(
        Actor("api_token", f"tok_{rng.randrange(16**8):08x}", n) for n in ("ci-bot", "deploy-bot", "nightly-sync")
    )
    agent = Actor("agent", "agt_routines", "routine-agent")
    integrations = tuple((f"int_{k}", k) for k in ("github", "jira", "linear", "slack", "pagerduty"))
    repos = tuple((f"repo_{i:03d}", f"{domain.split('.')[0]}/{r}") for i, r in
                  enumerate(("api", "web", "billing", "infra", "mobile", "data-pipelines")))
    pipelines = tuple((f"pl_{i:03d}", p) for i, p in enumerate(("build", "deploy-prod", "nightly", "lint", "release")))
    return WorkspaceCast(workspace_id, humans, tokens, agent, integrations, repos, pipelines)




def _shape(action: str, cast: WorkspaceCast, rng: random.Random, target_kind: str) -> Any:
    """Actor, target id/display and before/after for one action."""
    person = rng.choice(cast.people)
    other = rng.choice(cast.people)
    if action == "REPOSITORY_RUN_CLAIM":
        repo = rng.choice(cast.repos)
        run = f"run_{rng.randrange(10**7):07d}"
        return cast.agent, run, f"{repo[1]} #{run[4:]}", {"claimed_by": None}, {"claimed_by": "routine-agent",
                                                                              "repo": repo[1]}
    if action.startswith("PIPELINE_RUN_"):
        pipeline = rng.choice(cast.pipelines)
        run = f"run_{rng.randrange(10**7):07d}"
        state = action.removeprefix("PIPELINE_RUN_").lower()
        actor = rng.choice((*cast.tokens, cast.agent))
        return actor, run, f"{pipeline[1]} #{run[4:]}", {"status": "running" if state != "started" else "queued"}, {
            "status": state, "pipeline": pipeline[1], "duration_s": rng.randrange(20, 1800)}
    if action == "AGENT_REASSIGNMENT_QUEUED":
        pipeline = rng.choice(cast.pipelines)
        return cast.agent, pipeline[0], pipeline[1], {"assignee": person.display}, {"assignee": "routine-agent"}
    if action in {"MEMBERSHIP_DEFAULTED", "GROUP_MEMBERSHIP_VOL_QUEUE"}:
        return rng.choice(cast.tokens), other.id, other.display, {"role": None}, {"role": "member",
                                                                                 "source": "directory-sync"}
    if action == "MEMBER_ROLE_CHANGED":
        old, new = rng.sample(ROLES[:3], 2)
        return person, other.id, other.display, {"role": old}, {"role": new}
    if target_kind == "api_token":
        token = rng.choice(cast.tokens)
        if action in {"API_TOKEN_ROTATED", "API_TOKEN_RENAMED"}:
            return person, token.id, token.display, {"name": token.display, "last4": f"{rng.randrange(10**4):04d}"}, {
                "name": f"{token.display}-{rng.randrange(2, 9)}", "last4": f"{rng.randrange(10**4):04d}"}
        return person, token.id, token.display, None, {"name": token.display,
                                                       "scopes": rng.sample(SCOPES, rng.randrange(1, 4))}
    if target_kind == "integration":
        integration = rng.choice(cast.integrations)
        before = None if action.endswith("CONNECTED") and "DIS" not in action else {
            "integration_id": integration[0], "scopes": rng.sample(SCOPES, 2)}
        after = None if "DISCONNECTED" in action else {"integration_id": integration[0],
                                                       "scopes": rng.sample(SCOPES, rng.randrange(1, 5))}
        return person, integration[0], integration[1], before, after
    if target_kind in {"workspace_repo", "artifact_repo"}:
        repo = rng.choice(cast.repos)
        return person, repo[0], repo[1], {"visibility": "private"}, {"visibility": rng.choice(("private", "internal"))}
    if target_kind in {"pipeline", "pipeline_run"}:
        pipeline = rng.choice(cast.pipelines)
        return person, pipeline[0], pipeline[1], {"enabled": True}, {"enabled": rng.random() < 0.7}
    if target_kind == "invite":
        return person, f"inv_{rng.randrange(16**6):06x}", f"new{rng.randrange(999)}@partner.example.org", None, {
            "role": rng.choice(("member", "viewer")), "expires_in_days": 7}
    if target_kind == "improvement":
        actor = rng.choice((person, cast.agent))
        after_state = rng.choice(("approved", "merged", "answered", "rejected"))
        return actor, f"imp_{rng.randrange(10**5):05d}", f"Improvement {rng.randrange(10**4)}", {
            "state": "open"}, {"state": after_state}
    if target_kind == "user":
        return person, other.id, other.display, {"state": "active"}, {"state": rng.choice(("suspended", "active"))}
    return person, cast.workspace_id, cast.workspace_id, {"setting": "off"}, {"setting": "on"}


class EventGenerator:
    """Deterministic (seeded) stream of realistic events for one or many workspaces."""

    def __init__(self, seed: int = 7, catalog: Catalog | None = None) -> None:
        self.rng = random.Random(seed)
        self.catalog = catalog or load_catalog()
        names = list(self.catalog.actions)
        self._actions = names
        self._weights = [WEIGHTS.get(n, 1) for n in names]
        self._casts: dict[str, WorkspaceCast] = {}

    def cast(self, workspace_id: str) -> WorkspaceCast:
        if workspace_id not in self._casts:
            self._casts[workspace_id] = make_cast(workspace_id, self.rng)
        return self._casts[workspace_id]

    def event(self, workspace_id: str, occurred_at: datetime, action: str | None = None) -> AuditEvent:
        name = action or self.rng.choices(self._actions, self._weights)[0]
        spec = self.catalog.action(name)
        actor, target_id, target_display, before, after = _shape(name, self.cast(workspace_id), self.rng,
                                                                 spec.target_kind)
        return AuditEvent(
            id=uuid7(int(occurred_at.timestamp() * 1000)),
            workspace_id=workspace_id,
            occurred_at=occurred_at,
            action=name,
            category=spec.category,
            actor=actor,
            target=Target(spec.target_kind, target_id, target_display),
            before=before,
            after=after,
            context=RequestContext(
                ip=f"10.{self.rng.randrange(256)}.{self.rng.randrange(256)}.{self.rng.randrange(1, 255)}",
                user_agent="auditlog-seed/1",
                request_id=f"req_{self.rng.randrange(16**12):012x}",
                service="seed",
            ),
        )

    def history(self, workspace_ids: list[str], count: int, start: datetime, end: datetime,
                pick: Callable[[random.Random, list[str]], str] | None = None) -> Iterator[AuditEvent]:
        """``count`` events spread over [start, end), oldest first."""
        span = (end - start).total_seconds()
        step = span / max(count, 1)
        choose = pick or (lambda rng, ws: rng.choice(ws))
        for i in range(count):
            at = start + timedelta(seconds=i * step + self.rng.random() * step)
            yield self.event(choose(self.rng, workspace_ids), at.astimezone(UTC))
