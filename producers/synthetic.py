"""Realistic synthetic audit events: the demo seed, integration tests and benchmarks share them.

A workspace has people, API tokens, an agent, a few services, integrations,
repos and pipelines; most of its history is routine machine traffic (routines
claiming repository runs, pipeline runs completing, membership syncs), with
rarer human changes (a member promoted, a tracker connected, a token rotated).

What each action does to its target is data, not code: ``transitions.json``
gives every catalog action its effect, who may do it, what it is about and the
payload's before and after, so that no event contradicts its name (a
reactivation goes ``suspended → active``, an addition has no "before", a role
change changes the role). Its parts:

- ``effect``: ``create`` (no before), ``remove`` (no after), ``change`` (both,
  and they differ) or ``record`` (an occurrence: no before, nothing existed).
- ``actor``: weights over the actor pools: ``owner``; ``admin`` (owners and
  admins); ``contributor`` (anyone but a viewer); ``token``; ``agent``;
  ``directory_sync`` and ``scheduler`` (services); ``self`` (the person the event is about, e.g. a lockout after
  their own failed sign-ins). When the target is a person and the pool is not
  ``self``, the actor is someone else: nobody adds, removes or promotes
  themselves.
- ``target``: ``workspace``; ``person`` (anyone of the core team);
  ``teammate`` (the core team but the demo people, whose roles stay as the
  demo sign-in says); ``joiner`` (people who come and go); ``token``;
  ``integration``; ``tracker``; ``artifact_repo``; ``repo``; ``pipeline``;
  ``pipeline_run`` and ``repo_run`` (a new run each time); ``invite`` (for a
  joiner); ``improvement``.
- ``before``/``after`` (or ``variants``, a list of such pairs, one picked per
  event): a mapping of field to value, or null. A value is a JSON literal or a
  ``$`` reference: ``$<domain>`` (one of ``domains[<domain>]``),
  ``$<domain>*`` (a non-empty subset), ``$int:A:B``, ``$hex:N`` (N hex digits),
  ``$target`` / ``$target.id`` / ``$target.role`` / ``$target.parent`` (the
  target's display, id, current role, pipeline or repo of a run),
  ``$person:<pool>`` (an email from an actor pool); in ``after`` also
  ``$same`` / ``$inc`` (before's value, or it plus one) and a trailing ``!``
  on a domain or ``$hex`` reference (a value different from before's).
- ``weight``: relative frequency in a history; ``live``: in the live trickle
  of ``auditlog up``, which looks like a workspace during the day: people
  working, some token and agent traffic.

A person's role is state: a role change starts from the role they have and
the next one starts from where it ended.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from importlib import resources
from itertools import accumulate
from typing import Any, Literal

from schemas.catalog import Catalog, load_catalog
from schemas.event import Actor, AuditEvent, RequestContext, Target, uuid7

# The demo sign-in people (query_api/routes/demo.py) are the first people of every workspace.
DEMO_PEOPLE: dict[str, str] = {"owner": "alex", "admin": "sam", "member": "priya"}
TEAM_NAMES = ("jonas", "mei", "omar", "lucia", "noah", "ines", "kai", "zoe", "ravi")
TEAM_ROLES = ("member", "member", "member", "admin", "viewer")
JOINER_NAMES = ("lena", "tomas", "aiko", "felix", "nadia", "yusuf", "clara", "ben")
JOINER_ROLES = ("member", "member", "viewer")
EFFECTS = frozenset({"create", "remove", "change", "record"})
ACTOR_POOLS = frozenset({"owner", "admin", "contributor", "token", "agent", "directory_sync", "scheduler", "self"})
TARGET_POOLS: dict[str, str] = {
    "workspace": "workspace", "person": "user", "teammate": "user", "joiner": "user", "token": "api_token",
    "integration": "integration", "tracker": "integration", "artifact_repo": "artifact_repo",
    "repo": "workspace_repo", "pipeline": "pipeline", "pipeline_run": "pipeline_run", "repo_run": "pipeline_run",
    "invite": "invite", "improvement": "improvement",
}
SERVICES: dict[str, str] = {
    "workspace": "workspace-api", "members": "members-api", "auth_tokens": "auth-api",
    "integrations": "integrations-api", "artifact_repos": "artifacts-api", "pipelines": "pipelines-runner",
    "repos": "repos-api", "improvements": "improvements-api", "clarifications": "improvements-api",
    "invites": "members-api", "agent": "routines",
}
BROWSERS = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5"
    " Safari/605.1.15",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36",
    "Mozilla/5.0 (X11; Linux x86_64; rv:127.0) Gecko/20100101 Firefox/127.0",
)
MACHINE_AGENTS = {"ci-bot": "GitHub-Actions-Runner/2.317", "deploy-bot": "terraform-provider-auditlog/1.8",
                  "nightly-sync": "python-httpx/0.27"}

Payload = dict[str, Any]


def email_domain(workspace_id: str) -> str:
    """The mail domain of a workspace's people (a host name: no underscore)."""
    return f"{workspace_id.replace('_', '-')}.example.com"


def person_email(name: str, workspace_id: str) -> str:
    return f"{name}@{email_domain(workspace_id)}"


@dataclass(frozen=True)
class Transition:
    """One action's entry of transitions.json (see the module docstring)."""

    name: str
    effect: str
    actor: tuple[tuple[str, int], ...]
    target: str
    weight: int
    live: int
    variants: tuple[tuple[Payload | None, Payload | None], ...]


@dataclass(frozen=True)
class Transitions:
    domains: dict[str, tuple[Any, ...]]
    actions: dict[str, Transition]


def parse_transitions(doc: dict[str, Any], catalog: Catalog) -> Transitions:
    """Build Transitions from their JSON document, refusing any that do not fit the catalog."""
    domains = {k: tuple(v) for k, v in doc["domains"].items()}
    actions: dict[str, Transition] = {}
    for name, raw in doc["actions"].items():
        spec = catalog.action(name)
        pairs = raw["variants"] if "variants" in raw else [{"before": raw["before"], "after": raw["after"]}]
        t = Transition(name, raw["effect"], tuple(raw["actor"].items()), raw["target"], raw["weight"], raw["live"],
                       tuple((p["before"], p["after"]) for p in pairs))
        if t.effect not in EFFECTS:
            raise ValueError(f"{name}: unknown effect {t.effect!r}")
        if TARGET_POOLS.get(t.target) != spec.target_kind:
            raise ValueError(f"{name}: target {t.target!r} is not a {spec.target_kind}")
        if not t.actor or any(pool not in ACTOR_POOLS or w <= 0 for pool, w in t.actor):
            raise ValueError(f"{name}: actor must weigh known pools: {raw['actor']}")
        if "self" in raw["actor"] and TARGET_POOLS[t.target] not in {"user", "invite"}:
            raise ValueError(f"{name}: only a person (or an invite's invitee) can be their own actor")
        for before, after in t.variants:
            if (before is None) != (t.effect in {"create", "record"}) or (after is None) != (t.effect == "remove"):
                raise ValueError(f"{name}: a {t.effect} cannot have before={before!r}, after={after!r}")
            for side, fields in (("before", before), ("after", after)):
                for key, value in (fields or {}).items():
                    _compile_value(value, key, domains, side == "after")
        actions[name] = t
    missing = set(catalog.actions) - set(actions)
    if missing:
        raise ValueError(f"transitions.json has no entry for {sorted(missing)}")
    return Transitions(domains, actions)


@lru_cache(maxsize=1)
def load_transitions() -> Transitions:
    """The transitions shipped with this build, checked against the shipped catalog."""
    text = resources.files("producers").joinpath("transitions.json").read_text(encoding="utf-8")
    return parse_transitions(json.loads(text), load_catalog())


@dataclass(frozen=True)
class WorkspaceCast:
    """The people and things one workspace's events are about; the same for every generator."""

    workspace_id: str
    people: tuple[Actor, ...]  # the core team, the demo people (owner, admin, member) first
    roles: dict[str, str]  # person id -> role at the start, core team and joiners
    joiners: tuple[Actor, ...]
    tokens: tuple[Actor, ...]
    agent: Actor
    services: tuple[Actor, ...]
    integrations: tuple[tuple[str, str], ...]
    trackers: tuple[tuple[str, str], ...]
    artifact_repos: tuple[tuple[str, str], ...]
    repos: tuple[tuple[str, str], ...]
    pipelines: tuple[tuple[str, str], ...]


@lru_cache(maxsize=1024)
def make_cast(workspace_id: str, people: int = 8) -> WorkspaceCast:
    """The cast of ``workspace_id``: derived from its name only, so the seed, the live trickle and the
    demo sign-in agree on who everyone is."""
    rng = random.Random(f"cast/{workspace_id}")

    def person(name: str) -> Actor:
        return Actor("user", f"usr_{rng.randrange(16**8):08x}", person_email(name, workspace_id))

    demo = [person(n) for n in DEMO_PEOPLE.values()]
    team = [person(n) for n in rng.sample(TEAM_NAMES, k=max(min(people, len(TEAM_NAMES) + 3) - 3, 0))]
    joiners = tuple(person(n) for n in rng.sample(JOINER_NAMES, k=4))
    roles = {p.id: role for p, role in zip(demo, DEMO_PEOPLE, strict=True)}
    roles.update({p.id: rng.choice(TEAM_ROLES) for p in team})
    roles.update({p.id: rng.choice(JOINER_ROLES) for p in joiners})
    tokens = tuple(Actor("api_token", f"tok_{rng.randrange(16**8):08x}", n) for n in MACHINE_AGENTS)
    services = (Actor("service", "svc_directory_sync", "directory-sync"),
                Actor("service", "svc_scheduler", "scheduler"))
    integrations = tuple((f"int_{k}", k) for k in ("github", "jira", "linear", "slack", "pagerduty"))
    repos = tuple((f"repo_{i:03d}", f"{email_domain(workspace_id).split('.')[0]}/{r}") for i, r in
                  enumerate(("api", "web", "billing", "infra", "mobile", "data-pipelines")))
    artifact_repos = tuple((f"art_{i:03d}", a) for i, a in
                           enumerate(("npm-internal", "docker-prod", "pypi-mirror", "maven-releases")))
    pipelines = tuple((f"pl_{i:03d}", p) for i, p in enumerate(("build", "deploy-prod", "nightly", "lint", "release")))
    return WorkspaceCast(workspace_id, (*demo, *team), roles, joiners, tokens, Actor("agent", "agt_routines",
                         "routine-agent"), services, integrations, integrations[1:3], artifact_repos, repos, pipelines)


def demo_person(workspace_id: str, role: str) -> Actor:
    """The seeded person one signs in as with the demo ``role`` (owner, admin or member)."""
    return make_cast(workspace_id).people[list(DEMO_PEOPLE).index(role)]


# A target: id, display, the person it is (or is for: an invite), the pipeline or repo of a run.
Thing = tuple[str, str, Actor | None, str | None]
Rand = Callable[[], float]


class _Workspace:
    """One workspace's cast plus what changes as its history unfolds (people's roles)."""

    def __init__(self, cast: WorkspaceCast) -> None:
        self.cast = cast
        rng = random.Random(f"context/{cast.workspace_id}")  # a person's addresses and browser, in any generator
        self.roles = dict(cast.roles)
        demo_ids = {p.id for p in cast.people[: len(DEMO_PEOPLE)]}
        self.targets: dict[str, tuple[Thing, ...]] = {
            "workspace": ((cast.workspace_id, cast.workspace_id, None, None),),
            "person": tuple((p.id, p.display, p, None) for p in cast.people),
            "teammate": tuple((p.id, p.display, p, None) for p in cast.people if p.id not in demo_ids),
            "joiner": tuple((p.id, p.display, p, None) for p in cast.joiners),
            "token": tuple((t.id, t.display, None, None) for t in cast.tokens),
            "integration": tuple((i, d, None, None) for i, d in cast.integrations),
            "tracker": tuple((i, d, None, None) for i, d in cast.trackers),
            "artifact_repo": tuple((i, d, None, None) for i, d in cast.artifact_repos),
            "repo": tuple((i, d, None, None) for i, d in cast.repos),
            "pipeline": tuple((i, d, None, None) for i, d in cast.pipelines),
        }
        self.pools: dict[str, tuple[Actor, ...]] = {
            "token": cast.tokens, "agent": (cast.agent,), "directory_sync": cast.services[:1],
            "scheduler": cast.services[1:],
        }
        self._rebuild_pools()
        office = f"203.0.113.{rng.randrange(1, 255)}"
        self.ips: dict[str, tuple[str, ...]] = {}
        self.agents: dict[str, str] = {}
        for p in (*cast.people, *cast.joiners):
            self.ips[p.id] = (office, f"198.51.100.{rng.randrange(1, 255)}")
            self.agents[p.id] = rng.choice(BROWSERS)
        for a in (*cast.tokens, cast.agent, *cast.services):
            self.ips[a.id] = tuple(f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"
                                   for _ in range(2))
            self.agents[a.id] = MACHINE_AGENTS.get(a.display, f"auditlog-{a.display}/2.3")

    def _rebuild_pools(self) -> None:
        people = self.cast.people
        self.pools["owner"] = tuple(p for p in people if self.roles[p.id] == "owner")
        self.pools["admin"] = tuple(p for p in people if self.roles[p.id] in {"owner", "admin"})
        self.pools["contributor"] = tuple(p for p in people if self.roles[p.id] != "viewer")

    def set_role(self, person_id: str, role: str) -> None:
        if self.roles.get(person_id) != role:
            self.roles[person_id] = role
            self._rebuild_pools()


ValueFn = Callable[[Rand, _Workspace, Thing, Payload | None], Any]
_NO_VALUE = object()


def _compile_value(spec: Any, key: str, domains: dict[str, tuple[Any, ...]], in_after: bool) -> ValueFn | None:
    """A function producing one payload value from its spec (None: the spec is the literal value)."""
    if not isinstance(spec, str) or not spec.startswith("$"):
        return None
    ref = spec[1:]
    fixed: dict[str, ValueFn] = {
        "target": lambda r, w, t, b: t[1],
        "target.id": lambda r, w, t, b: t[0],
        "target.role": lambda r, w, t, b: w.roles[t[2].id] if t[2] is not None else None,
        "target.parent": lambda r, w, t, b: t[3],
    }
    if ref in fixed:
        return fixed[ref]
    if ref in {"same", "inc"}:
        if not in_after:
            raise ValueError(f"{spec} refers to before's {key}: only after can")
        if ref == "same":
            return lambda r, w, t, b: b[key] if b else None
        return lambda r, w, t, b: (b[key] if b else 0) + 1
    if ref.startswith("person:"):
        pool = ref.removeprefix("person:")
        if pool not in ACTOR_POOLS - {"self"}:
            raise ValueError(f"{spec}: unknown pool {pool!r}")

        def person(r: Rand, w: _Workspace, t: Thing, b: Payload | None) -> Any:
            people = w.pools[pool]
            return people[int(r() * len(people))].display

        return person
    different = ref.endswith("!")
    if different and not in_after:
        raise ValueError(f"{spec} must differ from before's {key}: only after can")
    ref = ref.removesuffix("!")
    if ref.startswith("int:"):
        if different:
            raise ValueError(f"{spec}: a different number is not supported; use a domain")
        low, high = (int(x) for x in ref.split(":")[1:])
        return lambda r, w, t, b: low + int(r() * (high - low + 1))
    draw: ValueFn
    if ref.startswith("hex:"):
        digits = int(ref.removeprefix("hex:"))
        draw = lambda r, w, t, b: format(int(r() * 16**digits), f"0{digits}x")  # noqa: E731
    elif ref.endswith("*") and ref[:-1] in domains:
        values = domains[ref[:-1]]

        def subset(r: Rand, w: _Workspace, t: Thing, b: Payload | None) -> Any:
            return [v for v in values if r() < 0.4] or [values[int(r() * len(values))]]

        draw = subset
    elif ref in domains:
        values = domains[ref]
        if len(values) < 2:
            raise ValueError(f"domain {ref} needs two values at least")
        if different:
            others = {v: tuple(x for x in values if x != v) for v in values}

            def other(r: Rand, w: _Workspace, t: Thing, b: Payload | None) -> Any:
                choices = others.get(b.get(key), values) if b else values
                return choices[int(r() * len(choices))]

            return other
        return lambda r, w, t, b: values[int(r() * len(values))]
    else:
        raise ValueError(f"{spec}: no such reference or domain")
    if not different:
        return draw

    def redraw(r: Rand, w: _Workspace, t: Thing, b: Payload | None) -> Any:
        old = b.get(key, _NO_VALUE) if b else _NO_VALUE
        while (value := draw(r, w, t, b)) == old:
            pass
        return value

    return redraw


Fields = tuple[tuple[str, ValueFn | None, Any], ...]


def _compile_fields(fields: Payload | None, domains: dict[str, tuple[Any, ...]], in_after: bool) -> Fields | None:
    if fields is None:
        return None
    return tuple((k, _compile_value(v, k, domains, in_after), v) for k, v in fields.items())


def _build(fields: Fields | None, r: Rand, w: _Workspace, t: Thing, b: Payload | None) -> Payload | None:
    if fields is None:
        return None
    return {k: v if fn is None else fn(r, w, t, b) for k, fn, v in fields}


def _target_picker(pool: str, domains: dict[str, tuple[Any, ...]]) -> Callable[[Rand, _Workspace], Thing]:
    if pool == "pipeline_run" or pool == "repo_run":
        parents = "pipeline" if pool == "pipeline_run" else "repo"

        def run(r: Rand, w: _Workspace) -> Thing:
            things = w.targets[parents]
            name = things[int(r() * len(things))][1]
            n = int(r() * 10**7)
            return f"run_{n:07d}", f"{name} #{n}", None, name

        return run
    if pool == "invite":
        def invite(r: Rand, w: _Workspace) -> Thing:
            joiners = w.targets["joiner"]
            person = joiners[int(r() * len(joiners))][2]
            return f"inv_{int(r() * 16**6):06x}", person.display if person else "", person, None

        return invite
    if pool == "improvement":
        titles = domains["improvement_title"]
        return lambda r, w: (f"imp_{int(r() * 10**5):05d}", titles[int(r() * len(titles))], None, None)
    return lambda r, w: (things := w.targets[pool])[int(r() * len(things))]


def _actor_picker(weights: tuple[tuple[str, int], ...]) -> Callable[[Rand, _Workspace, Thing], Actor]:
    pools = tuple(p for p, _ in weights)
    cum = tuple(accumulate(w for _, w in weights))
    total = cum[-1]

    def pick(r: Rand, w: _Workspace, t: Thing) -> Actor:
        if len(pools) == 1:
            pool = pools[0]
        else:
            x = r() * total
            pool = next(p for p, c in zip(pools, cum, strict=True) if x < c)
        if pool == "self":
            assert t[2] is not None
            return t[2]
        actors = w.pools[pool]
        actor = actors[int(r() * len(actors))]
        while t[2] is not None and actor.id == t[2].id:  # nobody acts on themselves but "self"
            actor = actors[int(r() * len(actors))]
        return actor

    return pick


@dataclass(frozen=True)
class _Compiled:
    category: str
    target_kind: str
    service: str
    target: Callable[[Rand, _Workspace], Thing]
    actor: Callable[[Rand, _Workspace, Thing], Actor]
    variants: tuple[tuple[Fields | None, Fields | None], ...]


class EventGenerator:
    """Deterministic (seeded) stream of realistic events for one or many workspaces.

    ``mix="history"`` weighs actions as a workspace's whole history (mostly machine traffic);
    ``mix="live"`` as the workspace looks while people work (the trickle of ``auditlog up``).
    """

    def __init__(self, seed: int = 7, catalog: Catalog | None = None,
                 mix: Literal["history", "live"] = "history") -> None:
        self.rng = random.Random(seed)
        self.catalog = catalog or load_catalog()
        self.transitions = load_transitions()
        domains = self.transitions.domains
        self._compiled: dict[str, _Compiled] = {}
        for name, t in self.transitions.actions.items():
            spec = self.catalog.action(name)
            self._compiled[name] = _Compiled(
                spec.category, spec.target_kind, SERVICES.get(spec.category, "web"), _target_picker(t.target, domains),
                _actor_picker(t.actor), tuple((_compile_fields(b, domains, False), _compile_fields(a, domains, True))
                                              for b, a in t.variants))
        names = [n for n in self.catalog.actions if n in self.transitions.actions]
        weights = [getattr(self.transitions.actions[n], "live" if mix == "live" else "weight") for n in names]
        self._actions = names
        self._cum_weights = list(accumulate(weights))
        self._workspaces: dict[str, _Workspace] = {}

    def cast(self, workspace_id: str) -> WorkspaceCast:
        return self._workspace(workspace_id).cast

    def role_of(self, workspace_id: str, person_id: str) -> str | None:
        """The role ``person_id`` has now in this generator's history of ``workspace_id``."""
        return self._workspace(workspace_id).roles.get(person_id)

    def _workspace(self, workspace_id: str) -> _Workspace:
        ws = self._workspaces.get(workspace_id)
        if ws is None:
            ws = self._workspaces[workspace_id] = _Workspace(make_cast(workspace_id))
        return ws

    def event(self, workspace_id: str, occurred_at: datetime, action: str | None = None) -> AuditEvent:
        name = action or self.rng.choices(self._actions, cum_weights=self._cum_weights)[0]
        return self._event(workspace_id, occurred_at, name)

    def _event(self, workspace_id: str, occurred_at: datetime, name: str, target: Thing | None = None,
               actor: Actor | None = None) -> AuditEvent:
        c = self._compiled.get(name)
        if c is None:
            self.catalog.action(name)  # raises UnknownAction
            raise ValueError(f"{name} has no transition")  # pragma: no cover - parse_transitions refuses that
        r = self.rng.random
        w = self._workspace(workspace_id)
        t = target or c.target(r, w)
        who = actor or c.actor(r, w, t)
        before_fields, after_fields = c.variants[0] if len(c.variants) == 1 else c.variants[int(r() * len(c.variants))]
        before = _build(before_fields, r, w, t, None)
        after = _build(after_fields, r, w, t, before)
        if t[2] is not None and after is not None and c.target_kind == "user" and "role" in after:
            w.set_role(t[0], after["role"])
        ips = w.ips[who.id]
        return AuditEvent(
            id=uuid7(int(occurred_at.timestamp() * 1000)),
            workspace_id=workspace_id,
            occurred_at=occurred_at,
            action=name,
            category=c.category,
            actor=who,
            target=Target(c.target_kind, t[0], t[1]),
            before=before,
            after=after,
            context=RequestContext(
                ip=ips[int(r() * len(ips))],
                user_agent=w.agents[who.id],
                request_id=f"req_{self.rng.getrandbits(48):012x}",
                service=c.service,
            ),
        )

    def founding(self, workspace_id: str, at: datetime) -> list[AuditEvent]:
        """The workspace's first events: its owner creates it and adds the rest of the core team with
        their roles, a minute apart."""
        w = self._workspace(workspace_id)
        owner = w.pools["owner"][0]
        events = [self._event(workspace_id, at, "WORKSPACE_CREATED", actor=owner)]
        for i, p in enumerate(w.cast.people[1:], start=1):
            events.append(self._event(workspace_id, at + timedelta(minutes=i), "MEMBER_ADDED",
                                      target=(p.id, p.display, p, None), actor=owner))
        return events

    def history(self, workspace_ids: list[str], count: int, start: datetime, end: datetime,
                pick: Callable[[random.Random, list[str]], str] | None = None) -> Iterator[AuditEvent]:
        """``count`` events spread over [start, end), oldest first."""
        span = (end - start).total_seconds()
        step = span / max(count, 1)
        choose = pick or (lambda rng, ws: rng.choice(ws))
        for i in range(count):
            at = start + timedelta(seconds=i * step + self.rng.random() * step)
            yield self.event(choose(self.rng, workspace_ids), at.astimezone(UTC))


def reference_history(workspace_id: str, count: int, start: datetime, end: datetime,
                      seed: int = 42) -> Iterator[AuditEvent]:
    """The reference workspace of ``auditlog up``: its founding at ``start``, then ``count`` events."""
    generator = EventGenerator(seed=seed)
    yield from generator.founding(workspace_id, start)
    yield from generator.history([workspace_id], count, start + timedelta(hours=1), end)
