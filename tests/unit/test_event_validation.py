from __future__ import annotations

import math
import re
import string
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from schemas.catalog import load_catalog
from schemas.contract import WORKSPACE_ID_PATTERN
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


# -- the contract's limits (schemas/contract.py), as the producer enforces them -----------------------


@pytest.mark.parametrize("year", [1, 1899, 2300, 9999])
def test_years_outside_the_accepted_range_are_refused(year):
    with pytest.raises(InvalidEvent, match=r"outside the accepted range \[1900-01-01, 2300-01-01\) UTC"):
        validate_record(_record(occurred_at=datetime(year, 6, 1, tzinfo=UTC)), load_catalog())


@pytest.mark.parametrize("moment", [datetime(1900, 1, 1, tzinfo=UTC), datetime(2299, 12, 31, 23, 59, 59, 999_999,
                                                                                   tzinfo=UTC)])
def test_the_first_and_last_microsecond_of_the_range_are_accepted(moment):
    validate_record(_record(occurred_at=moment), load_catalog())


def test_the_range_is_checked_in_utc_whatever_the_zone():
    late_in_utc = datetime(2299, 12, 31, 23, 0, tzinfo=timezone(timedelta(hours=-2)))  # 2300-01-01T01:00Z
    with pytest.raises(InvalidEvent, match="outside the accepted range"):
        validate_record(_record(occurred_at=late_in_utc), load_catalog())


@pytest.mark.parametrize("workspace", ["ws/a", "ws a", "\x00", "a\nb", "ws_1\n", "a" * 129, "ws_\N{ROCKET}", "é"])
def test_workspace_ids_the_api_cannot_serve_are_refused(workspace):
    with pytest.raises(InvalidEvent, match="workspace_id"):
        validate_record(_record(workspace_id=workspace), load_catalog())


@pytest.mark.parametrize("workspace", ["a" * 128, "a", "ws_1", "Team.Prod:eu-west-1"])
def test_workspace_ids_of_up_to_128_allowed_characters_are_accepted(workspace):
    validate_record(_record(workspace_id=workspace), load_catalog())


@pytest.mark.parametrize("number", [math.nan, math.inf, -math.inf])
@pytest.mark.parametrize("side", ["before", "after"])
def test_nan_and_infinities_are_refused(side, number):
    payload = {"before": {"n": 1}, "after": {"n": 1}}
    payload[side] = {"n": number}
    with pytest.raises(InvalidEvent, match=rf"payload\.{side}\.n is .*NaN and infinities have no JSON form"):
        validate_record(_record(payload=payload), load_catalog())


@pytest.mark.parametrize("number", [2**63, -(2**63) - 1, 2**100])
def test_integers_beyond_64_bits_are_refused(number):
    with pytest.raises(InvalidEvent, match="does not fit a 64-bit integer"):
        validate_record(_record(payload={"before": None, "after": {"n": number}}), load_catalog())


@pytest.mark.parametrize("number", [2**63 - 1, -(2**63), True])
def test_integers_within_64_bits_are_accepted(number):
    validate_record(_record(payload={"before": None, "after": {"n": number}}), load_catalog())


def _event(before, after) -> AuditEvent:
    return AuditEvent(uuid7(), "ws_1", datetime.now(UTC), "API_TOKEN_ROTATED", "auth_tokens",
                      Actor("user", "u1", "alex@example.com"), Target("api_token", "t1", "ci-bot"), before, after)


def test_negative_zero_is_recorded_as_zero():
    record = _event({"x": -0.0, "y": 1.5, "z": 0}, None).to_record()
    x = record["payload"]["before"]["x"]
    assert x == 0.0 and math.copysign(1.0, x) == 1.0
    assert record["payload"]["before"] == {"x": 0.0, "y": 1.5, "z": 0}
    assert type(record["payload"]["before"]["z"]) is int


def test_an_empty_payload_map_is_recorded_as_none():
    record = _event({}, {}).to_record()
    assert record["payload"] == {"before": None, "after": None}


_ALLOWED = string.ascii_letters + string.digits + "_.:-"


@settings(max_examples=200, deadline=None)
@given(st.from_regex(WORKSPACE_ID_PATTERN, fullmatch=True))
def test_every_workspace_id_matching_the_contract_pattern_is_accepted(workspace):
    validate_record(_record(workspace_id=workspace), load_catalog())


@settings(max_examples=300, deadline=None)
@given(st.one_of(
    st.text(),
    st.text(_ALLOWED, max_size=64).flatmap(  # an allowed id with one character it may not hold
        lambda ok: st.tuples(st.integers(0, len(ok)), st.characters().filter(lambda c: c not in _ALLOWED))
        .map(lambda pos_char: ok[:pos_char[0]] + pos_char[1] + ok[pos_char[0]:])),
    st.text(_ALLOWED, min_size=129, max_size=300),
))
def test_every_other_workspace_id_is_refused(workspace):
    assume(re.fullmatch(WORKSPACE_ID_PATTERN, workspace) is None)
    with pytest.raises(InvalidEvent, match="workspace_id"):
        validate_record(_record(workspace_id=workspace), load_catalog())
