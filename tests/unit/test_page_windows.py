from __future__ import annotations

import itertools
import uuid
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from query_api.cursor import Position
from query_api.filters import EventFilters
from query_api.queries import (
    PAGE_BOUNDED_WINDOWS,
    PAGE_FIRST_WINDOW,
    PAGE_MAX_WINDOW,
    PAGE_WINDOW_MARGIN,
    Window,
    WindowPlan,
)

NOW = datetime(2026, 11, 25, 12, tzinfo=UTC)
WANTED = 51


def _windows(plan: WindowPlan, found_per_window: list[int], wanted: int = WANTED) -> list[Window]:
    """Drive a plan as EventReader.page does: each window matched the next count of rows."""
    windows: list[Window] = []
    found = 0
    counts = iter(found_per_window)
    while (window := plan.next(found, wanted)) is not None:
        windows.append(window)
        found += next(counts, 0)
    return windows


def _covers_everything(windows: list[Window]) -> None:
    """Disjoint, newest first, open at both ends of the whole range."""
    assert windows[0][1] is None and windows[-1][0] is None
    for (lower, _), (_, upper) in itertools.pairwise(windows):
        assert lower == upper


def test_a_first_page_looks_at_the_newest_days_first():
    windows = _windows(WindowPlan(None, EventFilters(), now=NOW), [WANTED])
    assert windows == [(NOW - PAGE_FIRST_WINDOW, None)]


def test_a_filter_that_matched_nothing_in_the_newest_days_reads_the_rest_at_once():
    windows = _windows(WindowPlan(None, EventFilters(actor="mallory"), now=NOW), [0, 3])
    assert windows == [(NOW - PAGE_FIRST_WINDOW, None), (None, NOW - PAGE_FIRST_WINDOW)]


def test_the_next_window_is_sized_from_how_densely_the_first_matched():
    windows = _windows(WindowPlan(None, EventFilters(category="members"), now=NOW), [11, 40])
    first_lower = NOW - PAGE_FIRST_WINDOW
    expected_span = PAGE_FIRST_WINDOW * ((WANTED - 11) / 11 * PAGE_WINDOW_MARGIN)
    assert windows == [(first_lower, None), (first_lower - expected_span, first_lower)]


def test_a_window_longer_than_the_maximum_becomes_the_rest_of_the_history():
    # A page of 200 with one match in the first two days: the rest would need years at that density.
    wanted = 201
    windows = _windows(WindowPlan(None, EventFilters(actor="rare"), now=NOW), [1, 5], wanted=wanted)
    assert (PAGE_FIRST_WINDOW * (wanted - 1) * PAGE_WINDOW_MARGIN) > PAGE_MAX_WINDOW
    assert windows[1] == (None, NOW - PAGE_FIRST_WINDOW)


def test_a_sparse_filter_reads_months_rather_than_the_whole_history():
    # ~1 event in 200 of a small workspace: 5 matches in the first two days. The rows still missing, twice
    # over, need ~38 days at that density: a window of that length, not the whole history (which the
    # engine would read in full before the limit stops it).
    windows = _windows(WindowPlan(None, EventFilters(category="members"), now=NOW), [5, WANTED])
    first_lower = NOW - PAGE_FIRST_WINDOW
    span = PAGE_FIRST_WINDOW * ((WANTED - 5) / 5 * PAGE_WINDOW_MARGIN)
    assert timedelta(days=31) < span < PAGE_MAX_WINDOW
    assert windows == [(first_lower, None), (first_lower - span, first_lower)]


def test_a_remembered_density_of_a_few_events_a_week_sizes_a_window_of_months():
    density = 5 / (7 * DAY)
    windows = _windows(WindowPlan(None, EventFilters(target_kind="integration"), now=NOW, density=density),
                       [WANTED])
    span = timedelta(seconds=WANTED / density * PAGE_WINDOW_MARGIN)
    assert timedelta(days=31) < span < PAGE_MAX_WINDOW
    assert windows == [(NOW - span, None)]


def test_windows_always_cover_the_whole_history_and_their_number_is_capped():
    for found in ([1, 1, 1, 1, 1], [10, 1, 1, 1], [25, 0, 0], [0], [50, 0, 0, 0]):
        windows = _windows(WindowPlan(None, EventFilters(), now=NOW), found)
        _covers_everything(windows)
        assert len(windows) <= PAGE_BOUNDED_WINDOWS + 1


def test_a_cursor_anchors_the_windows_at_its_position():
    at = datetime(2026, 3, 1, tzinfo=UTC)
    windows = _windows(WindowPlan(Position(at, uuid.uuid4()), EventFilters(), now=NOW), [0])
    _covers_everything(windows)
    assert windows[0][0] == at - PAGE_FIRST_WINDOW


def test_until_anchors_the_windows_and_a_near_since_makes_them_unnecessary():
    until = datetime(2026, 6, 1, tzinfo=UTC)
    assert _windows(WindowPlan(None, EventFilters(until=until), now=NOW), [WANTED])[0][0] == until - PAGE_FIRST_WINDOW
    short = EventFilters(since=until - timedelta(hours=1), until=until)
    assert _windows(WindowPlan(None, short, now=NOW), [3]) == [(None, None)]


def test_since_ends_the_plan_with_an_open_window():
    until = datetime(2026, 6, 1, tzinfo=UTC)
    filters = EventFilters(since=until - timedelta(days=5), until=until)
    windows = _windows(WindowPlan(None, filters, now=NOW), [10, 10])
    assert windows == [(until - PAGE_FIRST_WINDOW, None), (None, until - PAGE_FIRST_WINDOW)]


DAY = 86_400.0


def test_a_rare_filter_remembered_from_an_earlier_page_reads_the_whole_history_at_once():
    rare = 22 / (365 * DAY)  # matches a second
    assert _windows(WindowPlan(None, EventFilters(actor="mallory"), now=NOW, density=rare), [22]) == [(None, None)]


def test_a_remembered_density_sizes_the_first_window():
    density = 7 / DAY
    windows = _windows(WindowPlan(None, EventFilters(category="integrations"), now=NOW, density=density), [WANTED])
    span = timedelta(seconds=WANTED / density * PAGE_WINDOW_MARGIN)
    assert windows == [(NOW - span, None)]


def test_a_dense_filter_never_gets_a_first_window_narrower_than_the_default():
    windows = _windows(WindowPlan(None, EventFilters(), now=NOW, density=1000.0), [WANTED])
    assert windows == [(NOW - PAGE_FIRST_WINDOW, None)]


def test_a_wrong_density_costs_queries_but_the_windows_still_cover_everything():
    # Remembered as dense, but this time the filter matches little: more windows, nothing skipped.
    for found in ([0, 0], [3, 1, 0], [10, 10, 10]):
        windows = _windows(WindowPlan(None, EventFilters(actor="x"), now=NOW, density=50 / DAY), found)
        _covers_everything(windows)
        assert len(windows) <= PAGE_BOUNDED_WINDOWS + 1


_moments = st.datetimes(min_value=datetime(1950, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC))


@settings(max_examples=300, deadline=None)
@given(
    now=_moments,
    since=st.none() | _moments,
    span_days=st.none() | st.floats(min_value=0.0, max_value=5000.0),
    after=st.none() | _moments,
    density=st.none() | st.floats(min_value=0.0, max_value=1e4, allow_nan=False),
    found=st.lists(st.integers(min_value=0, max_value=300), max_size=6),
    wanted=st.integers(min_value=1, max_value=201),
)
def test_any_plan_covers_everything_below_its_top_newest_first_in_at_most_three_windows(
    now, since, span_days, after, density, found, wanted
):
    until = None if since is None or span_days is None else since + timedelta(days=span_days)
    position = None if after is None else Position(after, uuid.uuid4())
    plan = WindowPlan(position, EventFilters(since=since, until=until), now=now, density=density)
    windows = _windows(plan, found, wanted=wanted)
    total = sum(found[: len(windows)])

    assert 1 <= len(windows) <= PAGE_BOUNDED_WINDOWS + 1
    assert windows[0][1] is None  # the top is the query's own bound (cursor, until or nothing)
    for (lower, _), (_, upper) in itertools.pairwise(windows):
        assert lower is not None and lower == upper  # no gap, no overlap
    for lower, upper in windows:
        if lower is not None:
            assert lower < (upper if upper is not None else plan.anchor)  # never empty, newest first
            if since is not None:
                assert lower > since  # a window reaching since is left open: since bounds the query
    if total < wanted:
        assert windows[-1][0] is None  # a page still short has read down to the bottom of the history
