"""The actor-days ranges: every day the actor was seen stays inside a range, whatever the cap."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from query_api.queries import actor_ranges

DAY = timedelta(days=1)
days_lists = st.lists(st.dates(min_value=date(1900, 1, 1), max_value=date(2299, 12, 30)), max_size=80)


def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


@given(days_lists, st.integers(min_value=1, max_value=40))
def test_every_day_is_covered_by_at_most_most_ordered_disjoint_ranges(days: list[date], most: int) -> None:
    ranges = actor_ranges(days, most)
    assert len(ranges) <= most
    assert (not ranges) == (not days)
    for day in days:
        start = _midnight(day)
        assert any(lo <= start and start + DAY <= hi for lo, hi in ranges), (day, ranges)
    for (lo, hi), (next_lo, _) in itertools.pairwise(ranges):
        assert lo < hi < next_lo  # ordered, disjoint, and a gap between (touching ranges are one)


@given(days_lists, st.integers(min_value=1, max_value=40))
def test_each_range_starts_and_ends_on_a_day_the_actor_was_seen(days: list[date], most: int) -> None:
    """Joining ranges only spans gaps between seen days: nothing before the first or after the last."""
    seen = set(days)
    for lo, hi in actor_ranges(days, most):
        assert lo.date() in seen and (hi - DAY).date() in seen


def test_consecutive_days_make_one_range_and_the_closest_ranges_are_joined_first() -> None:
    d = date(2026, 3, 1)
    days = [d, d + DAY, d + 2 * DAY, d + 10 * DAY, d + 12 * DAY, d + 40 * DAY]
    assert actor_ranges(days, 10) == [(_midnight(d), _midnight(d + 3 * DAY)),
                                      (_midnight(d + 10 * DAY), _midnight(d + 11 * DAY)),
                                      (_midnight(d + 12 * DAY), _midnight(d + 13 * DAY)),
                                      (_midnight(d + 40 * DAY), _midnight(d + 41 * DAY))]
    assert actor_ranges(days, 3)[1] == (_midnight(d + 10 * DAY), _midnight(d + 13 * DAY))


def test_no_ranges_at_all_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one range"):
        actor_ranges([date(2026, 1, 1)], 0)
