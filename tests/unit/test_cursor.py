from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from query_api.cursor import Cursor, CursorCodec, Position
from query_api.errors import InvalidCursor
from query_api.filters import EventFilters


def _cursor(ws: str = "ws_1") -> Cursor:
    return Cursor(ws, EventFilters(category="members", actor="alex@"), 50,
                  Position(datetime(2026, 3, 1, 9, 0, 0, 5, tzinfo=UTC), uuid.uuid4()))


def test_a_cursor_round_trips_its_filters_and_position():
    codec = CursorCodec("k")
    cursor = _cursor()
    assert codec.decode(codec.encode(cursor), "ws_1") == cursor


def test_a_tampered_cursor_is_refused():
    codec = CursorCodec("k")
    text = codec.encode(_cursor())
    body, sig = text.split(".")
    forged = body[:-2] + ("A" if body[-2] != "A" else "B") + body[-1] + "." + sig
    with pytest.raises(InvalidCursor, match="altered"):
        codec.decode(forged, "ws_1")


def test_a_cursor_signed_with_another_key_is_refused():
    with pytest.raises(InvalidCursor, match="altered"):
        CursorCodec("other").decode(CursorCodec("k").encode(_cursor()), "ws_1")


def test_a_cursor_from_another_workspace_is_refused():
    codec = CursorCodec("k")
    with pytest.raises(InvalidCursor, match="another workspace"):
        codec.decode(codec.encode(_cursor("ws_2")), "ws_1")


@pytest.mark.parametrize("text", ["", "abc", "a.b.c", "!!!.???", "x" * 5000])
def test_malformed_cursors_are_refused(text):
    with pytest.raises(InvalidCursor):
        CursorCodec("k").decode(text, "ws_1")


def test_a_cursor_carries_the_search_and_reads_it_back_as_the_same_question():
    from query_api.search import SearchLimits, parse_search

    search = parse_search('Alex -"Deploy Bot" actor:x@', SearchLimits(max_chars=256, max_terms=8))
    codec = CursorCodec("k")
    cursor = Cursor("ws_1", EventFilters(category="members", q=search), 50,
                    Position(datetime(2026, 3, 1, tzinfo=UTC), uuid.uuid4()))
    decoded = codec.decode(codec.encode(cursor), "ws_1")
    assert decoded == cursor
    assert decoded.filters.canonical()["q"] == 'alex -"deploy bot" actor:x@'
