"""Opaque, signed page cursors that carry the question and the position.

A cursor is ``base64url(json).base64url(hmac)``; the JSON holds the
workspace, the canonical filters, the page size and the last row's
(occurred_at, id). The HMAC key comes from settings, so a reader cannot
forge a position or widen the filters.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from dataclasses import dataclass
from datetime import datetime

from query_api.errors import InvalidCursor
from query_api.filters import EventFilters

_VERSION = 1


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


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class CursorCodec:
    def __init__(self, secret: str) -> None:
        self._key = hashlib.sha256(b"auditlog-cursor|" + secret.encode()).digest()

    def _sign(self, body: bytes) -> bytes:
        return hmac.new(self._key, body, hashlib.sha256).digest()[:18]

    def encode(self, cursor: Cursor) -> str:
        body = json.dumps(
            {
                "v": _VERSION,
                "ws": cursor.workspace_id,
                "f": cursor.filters.canonical(),
                "l": cursor.limit,
                "t": cursor.after.occurred_at.isoformat(),
                "id": str(cursor.after.id),
            },
            separators=(",", ":"),
            sort_keys=True,
        ).encode()
        return f"{_b64(body)}.{_b64(self._sign(body))}"

    def decode(self, text: str, workspace_id: str) -> Cursor:
        """The cursor in ``text``; raises InvalidCursor if it is malformed, forged or for another workspace."""
        if len(text) > 4096 or text.count(".") != 1:
            raise InvalidCursor("The cursor is malformed: pass next_cursor exactly as the previous page returned it.")
        body_part, sig_part = text.split(".")
        try:
            body = _unb64(body_part)
            signature = _unb64(sig_part)
        except (ValueError, TypeError):
            raise InvalidCursor(
                "The cursor is malformed: pass next_cursor exactly as the previous page returned it."
            ) from None
        if not hmac.compare_digest(signature, self._sign(body)):
            raise InvalidCursor("The cursor was altered or was not issued by this service; start again from page 1.")
        try:
            data = json.loads(body)
            if data.get("v") != _VERSION:
                raise ValueError("version")
            filters = EventFilters.from_canonical(data["f"])
            position = Position(datetime.fromisoformat(data["t"]), uuid.UUID(data["id"]))
            limit = int(data["l"])
            cursor_ws = str(data["ws"])
        except (ValueError, KeyError, TypeError):
            raise InvalidCursor(
                "The cursor is from an older version of this service; start again from page 1."
            ) from None
        if cursor_ws != workspace_id:
            raise InvalidCursor("This cursor belongs to another workspace; start again from page 1 of this one.")
        return Cursor(cursor_ws, filters, limit, position)
