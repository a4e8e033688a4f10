from __future__ import annotations

from datetime import UTC, datetime

import pytest

from schemas.catalog import load_catalog
from schemas.errors import InvalidEvent, UnknownAction
from schemas.event import Actor, AuditEvent, Target, utc, uuid7, validate_record


def _record(**changes):
    event = AuditEvent(uuid7(), "ws_1", datetime.now(UTC), "API_TOKEN_ROTATED", "auth_tokens",
                       Actor("user", "u1", "alex@example.com"), Target("api_token", "t1", "ci-bot"),
                       {"name": "ci-bot"}, {"name": "ci-bot-2"})
    record = event.to_record()
    record.update(changes)
    return record


def test_a_valid_event_passes():
    validate_record(_record(), load_catalog())


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"workspace_id": " "}, "workspace_id is empty"),
        ({"action": "TOKEN_MINTED_MAYBE"}, "unknown action"),
        ({"category": "members"}, "does not match the catalog"),
        ({"actor": {"kind": "user", "id": "", "display": ""}}, "actor is missing or empty"),
        ({"actor": {"kind": "robot", "id": "r", "display": "r"}}, "actor.kind"),
        ({"target": {"kind": "user", "id": "t1", "display": "x"}}, "target.kind"),
        ({"occurred_at": datetime(2026, 1, 1)}, "timezone-aware"),
        ({"id": "not-a-uuid"}, "not a UUID"),
        ({"payload": {"before": {"nested": {"a": 1}}, "after": None}}, "values must be"),
    ],
)
def test_invalid_events_are_refused_with_a_clear_reason(changes, message):
    with pytest.raises(InvalidEvent, match=message):
        validate_record(_record(**changes), load_catalog())


def test_unknown_action_names_the_action_and_the_fix():
    with pytest.raises(UnknownAction, match=r"add it to schemas/catalog\.json"):
        load_catalog().action("NOPE")


def test_naive_datetimes_are_refused():
    with pytest.raises(InvalidEvent, match="naive"):
        utc(datetime(2026, 1, 1, 12, 0))


def test_uuid7_is_version_7_and_sorts_by_time():
    a = uuid7(1_700_000_000_000)
    b = uuid7(1_700_000_000_001)
    assert a.version == 7 and b.version == 7
    assert a < b
    assert int(a.hex[:12], 16) == 1_700_000_000_000
