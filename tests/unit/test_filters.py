from __future__ import annotations

from datetime import UTC, datetime

import pytest

from query_api.errors import InvalidFilter
from query_api.filters import EventFilters, parse_filters
from schemas.catalog import load_catalog


def _parse(**kw):
    base = dict(category=None, actor=None, target_kind=None, action=None, since=None, until=None)
    base.update(kw)
    return parse_filters(load_catalog(), **base)


def test_a_plain_date_is_a_whole_utc_day_inclusive():
    f = _parse(since="2026-03-01", until="2026-03-01")
    assert f.since == datetime(2026, 3, 1, tzinfo=UTC)
    assert f.until == datetime(2026, 3, 2, tzinfo=UTC)


def test_datetimes_with_offsets_are_converted_to_utc():
    f = _parse(since="2026-03-01T09:00:00+02:00", until="2026-03-01T10:00:00Z")
    assert f.since == datetime(2026, 3, 1, 7, tzinfo=UTC)
    assert f.until is not None and f.until > datetime(2026, 3, 1, 10, tzinfo=UTC)


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"since": "2026-02-30"}, "not a real date"),
        ({"since": "yesterday"}, "not a date or datetime"),
        ({"since": "2026-03-01T09:00:00"}, "no time zone"),
        ({"since": "2026-03-05", "until": "2026-03-01"}, "is after until"),
        ({"category": "billing"}, "is not a category"),
        ({"target_kind": "planet"}, "is not a target kind"),
        ({"action": "'; DROP TABLE audit.events; --"}, "is not an action name"),
        ({"actor": "x" * 201}, "at most 200"),
        ({"actor": "a\x00b"}, "control characters"),
    ],
)
def test_bad_filters_get_a_message_a_person_understands(kw, message):
    with pytest.raises(InvalidFilter, match=message):
        _parse(**kw)


def test_all_and_empty_values_mean_no_filter():
    assert _parse(category="all", target_kind="", actor="  ").is_empty


def test_canonical_form_round_trips():
    f = _parse(category="members", actor="Alex@", since="2026-01-01")
    assert EventFilters.from_canonical(f.canonical()) == f
    assert f.actor == "alex@"
