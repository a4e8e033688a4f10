"""The timeline's bucket size and alignment, from seconds to the engine's whole range (1900..2299)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from config.settings import ApiSettings
from query_api.queries import ENGINE_MAX, ENGINE_MIN
from query_api.timeline import LADDER, BucketSize, choose_bucket

moments = st.datetimes(min_value=ENGINE_MIN.replace(tzinfo=None), max_value=ENGINE_MAX.replace(tzinfo=None),
                       timezones=st.just(UTC))
max_buckets = st.integers(min_value=ApiSettings.model_fields["timeline_max_buckets"].metadata[0].ge, max_value=2000)
SIZES = {s.label: s for s in LADDER}


def _ordered(a: datetime, b: datetime) -> tuple[datetime, datetime]:
    return (a, b) if a <= b else (b, a)


@settings(deadline=None)  # arithmetic only, but the shared machine stalls now and then
@given(moments, moments, max_buckets)
def test_the_chosen_size_fits_and_the_next_smaller_one_would_not(a, b, limit):
    lo, hi = _ordered(a, b)
    size = choose_bucket(lo, hi, limit)
    assert size.buckets(lo, hi) <= limit
    smaller = LADDER[: LADDER.index(size)]
    assert all(s.buckets(lo, hi) > limit for s in smaller)


@settings(deadline=None)
@given(moments, st.sampled_from(LADDER))
def test_a_moment_lies_in_its_aligned_bucket(moment, size):
    start = size.align(moment)
    assert start <= moment < size.after(start)
    assert size.align(start) == start  # aligned starts are fixed points
    assert size.align(size.after(start)) == size.after(start)  # and so are the next ones


@settings(deadline=None)  # walking up to 2000 buckets on a loaded machine
@given(moments, moments, st.sampled_from(LADDER))
def test_buckets_counts_the_contiguous_run_from_first_to_last(a, b, size):
    lo, hi = _ordered(a, b)
    if size.buckets(lo, hi) > 2000:
        return  # walking it would be slow; the other properties cover long runs
    start, n = size.align(lo), 1
    while start != size.align(hi):
        start = size.after(start)
        n += 1
    assert n == size.buckets(lo, hi)


@pytest.mark.parametrize(("span", "label"), [
    (timedelta(seconds=0), "1m"), (timedelta(seconds=30), "1m"), (timedelta(hours=1), "1m"),
    (timedelta(hours=12), "15m"), (timedelta(days=1), "15m"), (timedelta(days=3), "1h"),
    (timedelta(days=20), "6h"), (timedelta(days=90), "1d"), (timedelta(days=365), "1w"),
    (timedelta(days=3 * 365), "1mo"), (timedelta(days=20 * 365), "3mo"), (timedelta(days=100 * 365), "1y"),
    (timedelta(days=399 * 365), "10y"),
])
def test_ranges_from_seconds_to_centuries_get_minutes_to_decades(span, label):
    lo = datetime(1901, 3, 4, 5, 6, 7, tzinfo=UTC)
    assert choose_bucket(lo, lo + span, 120).label == label


def test_the_engines_whole_range_fits_at_the_smallest_allowed_limit():
    floor = ApiSettings.model_fields["timeline_max_buckets"].metadata[0].ge
    assert choose_bucket(ENGINE_MIN, ENGINE_MAX, floor).label == "10y"
    with pytest.raises(ValueError, match="no bucket size"):
        choose_bucket(ENGINE_MIN, ENGINE_MAX, floor - 1)


def test_a_range_that_ends_before_it_starts_is_refused():
    lo = datetime(2026, 1, 2, tzinfo=UTC)
    with pytest.raises(ValueError, match="before it starts"):
        choose_bucket(lo, lo - timedelta(microseconds=1), 120)


@pytest.mark.parametrize(("label", "moment", "start"), [
    # Minutes and hours count from the Unix epoch, also before it (floor, not truncation).
    ("15m", datetime(1903, 5, 17, 13, 47, 12, 500000), datetime(1903, 5, 17, 13, 45)),
    ("6h", datetime(1969, 12, 31, 23, 59, 59, 999999), datetime(1969, 12, 31, 18)),
    ("1d", datetime(2299, 12, 31, 23, 59, 59, 999999), datetime(2299, 12, 31)),
    # Weeks start on Monday (the engine's toMonday), not on the epoch's Thursday.
    ("1w", datetime(1903, 5, 17, 13, 47), datetime(1903, 5, 11)),
    ("1w", datetime(2026, 11, 27, 16, 0), datetime(2026, 11, 23)),
    # Quarters and decades count from 1970's calendar: 1903-05 is in the quarter April-June, 1900 is a decade.
    ("3mo", datetime(1903, 5, 17), datetime(1903, 4, 1)),
    ("10y", datetime(1903, 5, 17), datetime(1900, 1, 1)),
    ("10y", datetime(2299, 12, 31), datetime(2290, 1, 1)),
    ("1y", datetime(2024, 2, 29, 12), datetime(2024, 1, 1)),
])
def test_alignment_follows_the_engines_toStartOfInterval(label, moment, start):
    size = SIZES[label]
    assert size.align(moment.replace(tzinfo=UTC)) == start.replace(tzinfo=UTC)


def test_month_steps_end_at_the_next_calendar_boundary():
    assert SIZES["1mo"].after(datetime(2024, 1, 1, tzinfo=UTC)) == datetime(2024, 2, 1, tzinfo=UTC)
    assert SIZES["3mo"].after(datetime(2299, 10, 1, tzinfo=UTC)) == datetime(2300, 1, 1, tzinfo=UTC)
    assert SIZES["1y"].after(datetime(1969, 1, 1, tzinfo=UTC)) == datetime(1970, 1, 1, tzinfo=UTC)


def test_the_ladder_grows_strictly():
    def rough(size: BucketSize) -> timedelta:
        return timedelta(days=30 * size.months) if size.months else size.fixed

    steps = [rough(s) for s in LADDER]
    assert steps == sorted(steps) and len(set(steps)) == len(steps)
