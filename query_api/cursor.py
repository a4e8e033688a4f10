"""Opaque, signed page cursors that carry the question and the position.

A cursor is ``base64url(json).base64url(hmac)``; the JSON holds the
workspace, the canonical filters (the search ``q`` among them, in its canonical
text, so ``q=Alex`` and ``q=alex`` are one question and ``q=bob`` another), the page size and the last row's
(occurred_at, id). The HMAC key comes from settings, so a reader cannot
forge a position or widen the filters.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from query_api.errors import InvalidCursor
from query_api.filters import EventFilters
from query_api.signing import ForgedToken, MalformedToken, SignedJson

# 2: ``until`` is inclusive and the filters as given ride along (``g``); a version-1 cursor is refused.
_VERSION = 2


@dataclass(frozen=True)
class Position:
    occurred_at: datetime
    id: uuid.UUID


@dataclass(frozen=True)
class Cursor:
    workspace_id: str
    filters: EventFilters
    limit: int
    after: Position


class CursorCodec:
    def __init__(self, secret: str) -> None:
        self._tokens = SignedJson(secret, "auditlog-cursor", mac_bytes=18)

    def encode(self, cursor: Cursor) -> str:
        return self._tokens.dumps(
            {
                "v": _VERSION,
                "ws": cursor.workspace_id,
                "f": cursor.filters.canonical(),
                "g": cursor.filters.echo(),
                "l": cursor.limit,
                "t": cursor.after.occurred_at.isoformat(),
                "id": str(cursor.after.id),
            }
        )

    def decode(self, text: str, workspace_id: str) -> Cursor:
        """The cursor in ``text``; raises InvalidCursor if it is malformed, forged or for another workspace."""
        try:
            data = self._tokens.loads(text)
        except ForgedToken:
            raise InvalidCursor(
                "The cursor was altered or was not issued by this service; start again from page 1.", "cursor"
            ) from None
        except MalformedToken:
            raise InvalidCursor(
                "The cursor is malformed: pass next_cursor exactly as the previous page returned it.", "cursor"
            ) from None
        try:
            if data.get("v") != _VERSION:
                raise ValueError("version")
            filters = EventFilters.from_canonical(data["f"], data.get("g"))
            position = Position(datetime.fromisoformat(data["t"]), uuid.UUID(data["id"]))
            limit = int(data["l"])
            cursor_ws = str(data["ws"])
        except (ValueError, KeyError, TypeError, AttributeError):
            raise InvalidCursor(
                "The cursor is from an older version of this service; start again from page 1.", "cursor"
            ) from None
        if cursor_ws != workspace_id:
            raise InvalidCursor("This cursor belongs to another workspace; start again from page 1 of this one.",
                                "cursor")
        return Cursor(cursor_ws, filters, limit, position)
