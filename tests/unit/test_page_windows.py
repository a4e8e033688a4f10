from __future__ import annotations

import itertools
import uuid
from datetime import UTC, datetime, timedelta

from query_api.cursor import Position
from query_api.filters import EventFilters
from query_api.queries import PAGE_WINDOWS, page_windows

NOW = datetime(2026, 11, 25, 12, tzinfo=UTC)


def _covers_everything(windows):
    """Disjoint, newest first, open at both ends of the whole range."""
    assert windows[0][1] is None and windows[-1][0] is None
    for (lower, _), (_, upper) in itertools.pairwise(windows):
        assert lower == upper


def test_a_first_page_looks_at_the_newest_days_then_at_the_rest():
    windows = page_windows(None, EventFilters(), now=NOW)
    _covers_everything(windows)
    assert windows[0] == (NOW - PAGE_WINDOWS[0], None)


def test_a_cursor_anchors_the_windows_at_its_position():
    at = datetime(2026, 3, 1, tzinfo=UTC)
    windows = page_windows(Position(at, uuid.uuid4()), EventFilters(), now=NOW)
    _covers_everything(windows)
    assert windows[0][0] == at - PAGE_WINDOWS[0]


def test_until_anchors_the_windows_and_since_makes_them_unnecessary():
    until = datetime(2026, 6, 1, tzinfo=UTC)
    assert page_windows(None, EventFilters(until=until), now=NOW)[0][0] == until - PAGE_WINDOWS[0]
    short = EventFilters(since=until - timedelta(hours=1), until=until)
    assert page_windows(None, short, now=NOW) == [(None, None)]
