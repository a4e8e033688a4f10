"""The synthetic events mean what their action says (producers/transitions.json), and the demo
people of ``auditlog up`` are people of the seeded workspace.

Each catalog action is generated many times with several seeds and checked two ways: against
its entry in the transitions catalog (an interpretation of the value grammar written here,
independent of the generator's), and against what its name means (the issue's examples and the
verbs: what is added has no "before", what is removed has no "after", a change changes).
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from config.settings import ApiSettings, Settings
from producers.synthetic import (
    DEMO_PEOPLE,
    EventGenerator,
    Transition,
    load_transitions,
    make_cast,
    parse_transitions,
    reference_history,
)
from query_api.routes.demo import demo_tokens
from query_api.security import TokenVerifier
from schemas.catalog import load_catalog
from schemas.event import AuditEvent, validate_record

CATALOG = load_catalog()
TRANSITIONS = load_transitions()
START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
WORKSPACES = ("ws_reference", "ws_acme")
SEEDS = (1, 7, 42)
PER_SEED = 40

# Which roles each actor pool admits; the machine pools by actor kind.
POOL_ROLES = {"owner": {"owner"}, "admin": {"owner", "admin"}, "contributor": {"owner", "admin", "member"}}
POOL_KINDS = {"token": "api_token", "agent": "agent", "directory_sync": "service", "scheduler": "service"}

# What the names mean, whatever the data file says (the examples among them).
MEANING: dict[str, tuple[dict[str, Any] | None, dict[str, Any] | None]] = {
    "MEMBER_REACTIVATED": ({"state": "suspended"}, {"state": "active"}),
    "MEMBER_SUSPENDED": ({"state": "active"}, {"state": "suspended"}),
    "LOGIN_FAILED_LOCKOUT": ({"state": "active"}, {"state": "locked"}),
    "IMPROVEMENT_PROPOSED": (None, {"state": "open"}),
    "IMPROVEMENT_APPROVED": ({"state": "open"}, {"state": "approved"}),
    "IMPROVEMENT_REJECTED": ({"state": "open"}, {"state": "rejected"}),
    "IMPROVEMENT_REVERTED": ({"state": "merged"}, {"state": "reverted"}),
    "PIPELINE_RUN_STARTED": ({"status": "queued"}, {"status": "running"}),
    "PIPELINE_RUN_COMPLETED": ({"status": "running"}, {"status": "succeeded"}),
    "PIPELINE_RUN_FAILED": ({"status": "running"}, {"status": "failed"}),
    "INVITE_ACCEPTED": ({"state": "pending"}, {"state": "accepted"}),
    "INVITE_EXPIRED": ({"state": "pending"}, {"state": "expired"}),
    "API_TOKEN_EXPIRED": ({"state": "active"}, {"state": "expired"}),
    "AGENT_ENABLED": ({"agent_enabled": False}, {"agent_enabled": True}),
    "AGENT_DISABLED": ({"agent_enabled": True}, {"agent_enabled": False}),
    "REPO_ARCHIVED": ({"archived": False}, {"archived": True}),
    "WORKSPACE_SSO_ENFORCED": ({"sso_required": False}, {"sso_required": True}),
}
# Fields that must differ between before and after.
CHANGES: dict[str, str] = {
    "MEMBER_ROLE_CHANGED": "role", "API_TOKEN_ROTATED": "last4", "API_TOKEN_RENAMED": "name",
    "API_TOKEN_SCOPES_CHANGED": "scopes", "INTEGRATION_SCOPES_CHANGED": "scopes", "WORKSPACE_PLAN_CHANGED": "plan",
    "WORKSPACE_RENAMED": "name", "WORKSPACE_RETENTION_CHANGED": "retention_days",
    "REPO_DEFAULT_BRANCH_CHANGED": "default_branch", "ARTIFACT_REPO_VISIBILITY_CHANGED": "visibility",
    "ARTIFACT_RETENTION_CHANGED": "retention_days", "INTEGRATION_CREDENTIALS_ROTATED": "credential_last4",
    "PIPELINE_SECRET_CHANGED": "last4", "REPO_ACCESS_CHANGED": "permission",
}
CREATE_VERBS = ("_CREATED", "_ADDED", "_CONNECTED", "_ONBOARDED", "_PROPOSED", "_SENT", "_REQUESTED")
REMOVE_VERBS = ("_REMOVED", "_DELETED", "_DISCONNECTED", "_OFFBOARDED", "_REVOKED")
PEOPLE_ON_OTHERS = {"MEMBER_ADDED", "MEMBER_REMOVED", "MEMBER_ROLE_CHANGED", "MEMBER_SUSPENDED",
                    "MEMBER_REACTIVATED", "MEMBER_MFA_RESET"}


def _generated(action: str) -> list[tuple[str | None, AuditEvent]]:
    """Events of ``action``, each with the role its actor had when it happened."""
    out = []
    for seed in SEEDS:
        gen = EventGenerator(seed=seed)
        for i in range(PER_SEED):
            e = gen.event(WORKSPACES[i % 2], START + timedelta(minutes=i), action=action)
            out.append((gen.role_of(e.workspace_id, e.actor.id), e))
    return out


def _fits(spec: Any, value: Any, key: str, event: AuditEvent, before: dict[str, Any] | None) -> bool:
    """Whether ``value`` is one that ``spec`` (transitions.json's grammar) allows."""
    if not isinstance(spec, str) or not spec.startswith("$"):
        return bool(value == spec and type(value) is type(spec))
    ref = spec[1:]
    old = (before or {}).get(key)
    cast = make_cast(event.workspace_id)
    if ref == "target":
        return bool(value == event.target.display)
    if ref == "target.id":
        return bool(value == event.target.id)
    if ref in {"target.role"}:
        return value in {"viewer", "member", "admin", "owner"}
    if ref == "target.parent":
        return isinstance(value, str) and event.target.display.startswith(f"{value} #")
    if ref == "same":
        return bool(value == old)
    if ref == "inc":
        return isinstance(old, int) and bool(value == old + 1)
    if ref.startswith("person:"):
        return value in {p.display for p in cast.people}
    differs = ref.endswith("!")
    ref = ref.removesuffix("!")
    if differs and value == old:
        return False
    if ref.startswith("int:"):
        low, high = (int(x) for x in ref.split(":")[1:])
        return isinstance(value, int) and low <= value <= high
    if ref.startswith("hex:"):
        digits = int(ref.removeprefix("hex:"))
        return isinstance(value, str) and len(value) == digits and all(c in "0123456789abcdef" for c in value)
    if ref.endswith("*"):
        domain = TRANSITIONS.domains[ref[:-1]]
        return isinstance(value, list) and bool(value) and set(value) <= set(domain) and len(set(value)) == len(value)
    return value in TRANSITIONS.domains[ref]


def _matches(sides: tuple[dict[str, Any] | None, dict[str, Any] | None], event: AuditEvent) -> bool:
    spec_before, spec_after = sides
    for spec, got, before in ((spec_before, event.before, None), (spec_after, event.after, event.before)):
        if spec is None or got is None:
            if (spec is None) != (got is None):
                return False
            continue
        if set(spec) != set(got) or not all(_fits(spec[k], got[k], k, event, before) for k in spec):
            return False
    return True


def _actor_fits(role: str | None, t: Transition, event: AuditEvent) -> bool:
    actor = event.actor
    for pool in dict(t.actor):
        if pool == "self":
            if actor.kind == "user" and actor.display == event.target.display:
                return True
        elif pool in POOL_KINDS:
            if actor.kind == POOL_KINDS[pool]:
                return True
        elif actor.kind == "user" and role in POOL_ROLES[pool]:
            return True
    return False


def test_every_catalog_action_has_exactly_one_transition():
    assert set(TRANSITIONS.actions) == set(CATALOG.actions)


@pytest.mark.parametrize("action", sorted(CATALOG.actions))
def test_each_actions_payloads_follow_its_transition_and_its_name(action):
    t = TRANSITIONS.actions[action]
    spec = CATALOG.action(action)
    for role, e in _generated(action):
        seen = f"{action}: {e.actor.display} -> {e.target.display}: {e.before} -> {e.after}"
        validate_record(e.to_record(), CATALOG)
        assert (e.category, e.target.kind) == (spec.category, spec.target_kind), seen
        assert any(_matches(sides, e) for sides in t.variants), f"{seen} fits no variant of transitions.json"
        assert _actor_fits(role, t, e), f"{seen}: the actor is not one of {dict(t.actor)}"
        if t.effect in {"create", "record"}:
            assert e.before is None and e.after, seen
        elif t.effect == "remove":
            assert e.before and e.after is None, seen
        else:
            assert e.before and e.after and e.before != e.after, seen
            assert any(e.before.get(k) != v for k, v in e.after.items()), f"{seen}: nothing changed"
        if action in MEANING:
            want_before, want_after = MEANING[action]
            for want, got in ((want_before, e.before), (want_after, e.after)):
                assert (want is None) == (got is None), seen
                assert all(got is not None and got[k] == v for k, v in (want or {}).items()), seen
        if action in CHANGES:
            key = CHANGES[action]
            assert e.before and e.after and e.before[key] != e.after[key], seen
        if action in PEOPLE_ON_OTHERS:
            assert e.actor.id != e.target.id, f"{seen}: a member acting on themselves"
        if "self" in dict(t.actor):
            assert e.actor.display == e.target.display, seen
        elif spec.target_kind == "user":
            assert e.actor.id != e.target.id, f"{seen}: acting on themselves"


@pytest.mark.parametrize("action", sorted(CATALOG.actions))
def test_the_verb_of_each_action_name_decides_its_effect(action):
    effect = TRANSITIONS.actions[action].effect
    if action.endswith(CREATE_VERBS):
        assert effect == "create"
    elif action.endswith(REMOVE_VERBS):
        assert effect == "remove"
    elif action.endswith(("_CHANGED", "_ROTATED", "_RENAMED", "_REACTIVATED", "_SUSPENDED", "_MERGED")):
        assert effect == "change"


def test_a_role_change_starts_from_the_role_the_last_one_gave_and_spares_the_demo_people():
    gen = EventGenerator(seed=5)
    cast = make_cast("ws_a")
    demo = {p.id for p in cast.people[: len(DEMO_PEOPLE)]}
    last = dict(cast.roles)
    for i in range(300):
        e = gen.event("ws_a", START + timedelta(hours=i), action="MEMBER_ROLE_CHANGED")
        assert e.before and e.after
        assert e.target.id not in demo, "the demo people keep the roles the demo sign-in gives them"
        assert e.before["role"] == last[e.target.id], "the role before is not the one the last change gave"
        last[e.target.id] = str(e.after["role"])
    assert [gen.role_of("ws_a", p.id) for p in cast.people[:3]] == list(DEMO_PEOPLE)


def test_the_same_seed_gives_the_same_events_and_every_generator_the_same_people():
    def shape(seed: int) -> list[tuple[Any, ...]]:
        events = EventGenerator(seed=seed).history(list(WORKSPACES), 500, START, START + timedelta(days=3))
        return [(e.occurred_at, e.action, e.actor, e.target, json.dumps([e.before, e.after]), e.context)
                for e in events]

    assert shape(3) == shape(3)
    assert shape(3) != shape(4)
    assert EventGenerator(seed=1).cast("ws_x") == EventGenerator(seed=2, mix="live").cast("ws_x")


def test_one_identity_per_person_and_one_mail_domain():
    events = list(reference_history("ws_reference", 4000, START, START + timedelta(days=30)))
    ids_by_display: dict[str, set[str]] = {}
    for e in events:
        for who in (e.actor, e.target):
            if who.kind == "user":
                ids_by_display.setdefault(who.display, set()).add(who.id)
    assert all(len(ids) == 1 for ids in ids_by_display.values()), ids_by_display
    assert {d.split("@")[1] for d in ids_by_display} == {"ws-reference.example.com"}
    names = Counter(d.split("@")[0] for d in ids_by_display)
    assert max(names.values()) == 1


def test_the_demo_sign_in_people_are_the_seeded_workspaces_owner_admin_and_member():
    ws = "ws_reference"
    settings = Settings(api=ApiSettings(jwt_secret="unit-test-secret-of-32-bytes-long!!"),
                        demo={"workspace_id": ws})
    verifier = TokenVerifier(settings.api)
    signed_in = {role: verifier.verify(f"Bearer {token}") for role, token in demo_tokens(settings).items()}
    events = list(reference_history(ws, 6000, START, START + timedelta(days=90)))
    created, added = events[0], {e.target.id: e for e in events if e.action == "MEMBER_ADDED"}
    gen = EventGenerator()
    for role, principal in signed_in.items():
        assert principal.role_in(ws) == role
        assert principal.email == f"{DEMO_PEOPLE[role]}@ws-reference.example.com"
        acted = [e for e in events if e.actor.id == principal.user_id]
        assert len(acted) >= 5, f"{principal.email} ({role}) barely appears in the seeded history"
        assert {e.actor.display for e in acted} == {principal.email}
        if role == "owner":
            assert created.action == "WORKSPACE_CREATED" and created.actor.id == principal.user_id
        else:
            assert added[principal.user_id].after == {"role": role, "state": "active"}
            assert added[principal.user_id].actor.id == signed_in["owner"].user_id
        for e in acted:
            pools = set(dict(TRANSITIONS.actions[e.action].actor))
            assert pools & {p for p, roles in POOL_ROLES.items() if role in roles} or "self" in pools, \
                f"{principal.email} ({role}) did {e.action}, which needs {pools}"
        assert gen.role_of(ws, principal.user_id) == role


def test_the_live_trickle_is_mostly_people_at_work_with_some_machines():
    gen = EventGenerator(seed=9, mix="live")
    events = [gen.event("ws_reference", START + timedelta(seconds=2 * i)) for i in range(3000)]
    kinds = Counter(e.actor.kind for e in events)
    assert kinds["user"] / len(events) >= 0.5, kinds
    assert kinds["api_token"] / len(events) >= 0.1 and kinds["agent"] / len(events) >= 0.05, kinds
    assert not {"WORKSPACE_CREATED", "WORKSPACE_DELETION_SCHEDULED"} & {e.action for e in events}
    history = Counter(e.action for e in EventGenerator(seed=9).history(["ws_h"], 3000, START, START + timedelta(1)))
    assert history.most_common(1)[0][0] == "REPOSITORY_RUN_CLAIM"
    assert history["WORKSPACE_CREATED"] == 0, "a workspace is created once: by founding(), not at random"


def _doc() -> dict[str, Any]:
    from importlib import resources

    return dict(json.loads(resources.files("producers").joinpath("transitions.json").read_text()))


@pytest.mark.parametrize(("action", "patch", "message"), [
    ("MEMBER_ADDED", {"before": {"role": "member"}}, "a create cannot have"),
    ("MEMBER_REMOVED", {"after": {"role": "member"}}, "a remove cannot have"),
    ("MEMBER_ROLE_CHANGED", {"target": "token"}, "is not a user"),
    ("MEMBER_ROLE_CHANGED", {"before": {"role": "$role!"}}, "only after can"),
    ("MEMBER_ROLE_CHANGED", {"after": {"role": "$no_such_domain"}}, "no such reference"),
    ("MEMBER_ROLE_CHANGED", {"actor": {"nobody": 1}}, "actor must weigh known pools"),
    ("API_TOKEN_CREATED", {"actor": {"self": 1}}, "only a person"),
])
def test_transitions_that_contradict_themselves_are_refused(action, patch, message):
    doc = _doc()
    doc["actions"][action].update(patch)
    with pytest.raises(ValueError, match=message):
        parse_transitions(doc, CATALOG)


def test_an_action_without_a_transition_is_refused():
    doc = _doc()
    del doc["actions"]["MEMBER_ADDED"]
    with pytest.raises(ValueError, match="no entry for"):
        parse_transitions(doc, CATALOG)
