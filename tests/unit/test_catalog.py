from __future__ import annotations

import pytest

from schemas.catalog import load_catalog, parse_catalog

CHIPS = {"Workspace", "Members", "Auth & tokens", "Integrations", "Artifact repos", "Pipelines", "Repos",
         "Improvements", "Clarifications", "Invites", "Agent"}
KINDS = {"Workspace", "User", "API token", "Integration", "Artifact repo", "Pipeline", "Pipeline run",
         "Workspace repo", "Invite", "Improvement"}


def test_catalog_covers_every_chip_and_target_kind_with_actions():
    catalog = load_catalog()
    assert {c.label for c in catalog.categories} == CHIPS
    assert {k.label for k in catalog.target_kinds} == KINDS
    used_categories = {a.category for a in catalog.actions.values()}
    used_kinds = {a.target_kind for a in catalog.actions.values()}
    assert used_categories == catalog.category_keys
    assert used_kinds == catalog.target_kind_keys


def test_catalog_has_at_least_sixty_grep_friendly_actions_and_the_seed_names():
    catalog = load_catalog()
    assert len(catalog.actions) >= 60
    for name in ("REPOSITORY_RUN_CLAIM", "MEMBERSHIP_DEFAULTED", "AGENT_REASSIGNMENT_QUEUED",
                 "GROUP_MEMBERSHIP_VOL_QUEUE", "MEMBER_ROLE_CHANGED", "API_TOKEN_ROTATED", "INTEGRATION_CONNECTED"):
        assert name in catalog.actions
    for name in catalog.actions:
        assert name == name.upper() and " " not in name and len(name) <= 40


def test_catalog_refuses_an_action_with_an_unknown_category():
    doc = {"categories": [{"key": "members", "label": "Members"}], "target_kinds": [{"key": "user", "label": "User"}],
           "actions": [{"name": "X", "category": "nope", "target_kind": "user"}]}
    with pytest.raises(ValueError, match="unknown category"):
        parse_catalog(doc)
