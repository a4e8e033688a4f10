"""The audit event as Python values, and the rules every event must satisfy.

The same ``validate_record`` guards both ends: the producer refuses a bad
event at the call, and the consumer dead-letters one that slipped through
(an older producer, a hand-made message).
"""

from __future__ import annotations

import math
import os
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from schemas.catalog import Catalog
from schemas.contract import ACTOR_KINDS, OCCURRED_AT_END, OCCURRED_AT_MIN, WORKSPACE_ID_PATTERN, WORKSPACE_ID_RE
from schemas.errors import InvalidEvent

PayloadScalar = None | bool | int | float | str | list[str]
PayloadMap = dict[str, PayloadScalar]

__all__ = ["ACTOR_KINDS", "Actor", "AuditEvent", "RequestContext", "Target", "utc", "uuid7", "validate_record"]


def uuid7(now_ms: int | None = None) -> uuid.UUID:
    """A UUIDv7 (RFC 9562): 48-bit Unix milliseconds, then random bits.

    Time-ordered ids keep inserts of one workspace close together in the
    table and let anyone read the emission time off an id.
    """
    ms = int(time.time() * 1000) if now_ms is None else now_ms
    rand = int.from_bytes(os.urandom(10), "big")
    value = (ms & ((1 << 48) - 1)) << 80
    value |= 0x7 << 76
    value |= ((rand >> 62) & 0xFFF) << 64
    value |= 0b10 << 62
    value |= rand & ((1 << 62) - 1)
    return uuid.UUID(int=value)


@dataclass(frozen=True, slots=True)
class Actor:
    kind: str
    id: str
    display: str


@dataclass(frozen=True, slots=True)
class Target:
    kind: str
    id: str
    display: str


@dataclass(frozen=True, slots=True)
class RequestContext:
    ip: str | None = None
    user_agent: str | None = None
    request_id: str | None = None
    service: str | None = None


@dataclass(frozen=True, slots=True)
class AuditEvent:
    id: uuid.UUID
    workspace_id: str
    occurred_at: datetime
    action: str
    category: str
    actor: Actor
    target: Target
    before: PayloadMap | None = None
    after: PayloadMap | None = None
    context: RequestContext | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_record(self) -> dict[str, Any]:
        """The Avro record (plain dicts) for this event."""
        record: dict[str, Any] = {
            "id": str(self.id),
            "workspace_id": self.workspace_id,
            "occurred_at": self.occurred_at,
            "action": self.action,
            "category": self.category,
            "actor": {"kind": self.actor.kind, "id": self.actor.id, "display": self.actor.display},
            "target": {"kind": self.target.kind, "id": self.target.id, "display": self.target.display},
            "payload": {"before": _normalised(self.before), "after": _normalised(self.after)},
            "context": None
            if self.context is None
            else {
                "ip": self.context.ip,
                "user_agent": self.context.user_agent,
                "request_id": self.context.request_id,
                "service": self.context.service,
            },
        }
        record.update(self.extra)
        return record


def _normalised(value: PayloadMap | None) -> PayloadMap | None:
    """The map as the contract stores it: empty means absent, ``-0.0`` is ``0.0`` (schemas/contract.py)."""
    if not value:
        return None
    if any(isinstance(v, float) and v == 0.0 for v in value.values()):
        return {k: 0.0 if isinstance(v, float) and v == 0.0 else v for k, v in value.items()}
    return value


def _check_payload_map(name: str, value: Any) -> None:
    if value is None:
        return
    if not isinstance(value, dict):
        raise InvalidEvent(f"payload.{name} must be a mapping of field name to value, got {type(value).__name__}")
    for key, item in value.items():
        if not isinstance(key, str) or not key:
            raise InvalidEvent(f"payload.{name} has a key that is not a non-empty string: {key!r}")
        if isinstance(item, float) and not math.isfinite(item):
            raise InvalidEvent(f"payload.{name}.{key} is {item}: NaN and infinities have no JSON form")
        if isinstance(item, int) and not isinstance(item, bool) and not -(2**63) <= item < 2**63:
            raise InvalidEvent(f"payload.{name}.{key} does not fit a 64-bit integer")
        if item is None or isinstance(item, bool | int | float | str):
            continue
        if isinstance(item, list | tuple) and all(isinstance(x, str) for x in item):
            continue
        raise InvalidEvent(
            f"payload.{name}.{key} is a {type(item).__name__}; values must be null, a boolean, a number,"
            " a string or a list of strings"
        )


def validate_record(record: dict[str, Any], catalog: Catalog) -> None:
    """Raise InvalidEvent unless ``record`` (an Avro-shaped dict) satisfies the contract."""
    workspace = record.get("workspace_id")
    if not isinstance(workspace, str) or not workspace.strip():
        raise InvalidEvent("workspace_id is empty: every event belongs to one workspace")
    if WORKSPACE_ID_RE.fullmatch(workspace) is None:
        raise InvalidEvent(
            f"workspace_id {workspace[:140]!r} is not 1-128 characters of letters, digits, '_', '.', ':' or '-'"
            f" ({WORKSPACE_ID_PATTERN}): the query API could never serve it"
        )
    spec = catalog.action(str(record.get("action")))
    if record.get("category") != spec.category:
        raise InvalidEvent(
            f"category {record.get('category')!r} does not match the catalog's {spec.category!r}"
            f" for {spec.name}"
        )
    actor = record.get("actor") or {}
    if not str(actor.get("id") or "").strip() or not str(actor.get("display") or "").strip():
        raise InvalidEvent("actor is missing or empty: an audit event must say who acted (id and display)")
    if actor.get("kind") not in ACTOR_KINDS:
        raise InvalidEvent(f"actor.kind must be one of {sorted(ACTOR_KINDS)}, got {actor.get('kind')!r}")
    target = record.get("target") or {}
    if target.get("kind") != spec.target_kind:
        raise InvalidEvent(
            f"target.kind {target.get('kind')!r} does not match the catalog's {spec.target_kind!r}"
            f" for {spec.name}"
        )
    if not str(target.get("id") or "").strip():
        raise InvalidEvent("target.id is empty: say what the action was done to")
    occurred = record.get("occurred_at")
    if not isinstance(occurred, datetime) or occurred.tzinfo is None:
        raise InvalidEvent("occurred_at must be a timezone-aware datetime (UTC)")
    if not OCCURRED_AT_MIN <= occurred < OCCURRED_AT_END:
        raise InvalidEvent(
            f"occurred_at {occurred.isoformat()} is outside the accepted range"
            f" [{OCCURRED_AT_MIN.date()}, {OCCURRED_AT_END.date()}) UTC"
        )
    try:
        uuid.UUID(str(record.get("id")))
    except ValueError:
        raise InvalidEvent(f"id {record.get('id')!r} is not a UUID") from None
    payload = record.get("payload") or {}
    _check_payload_map("before", payload.get("before"))
    _check_payload_map("after", payload.get("after"))


def utc(dt: datetime) -> datetime:
    """``dt`` in UTC; refuses naive datetimes, whose zone nobody can know."""
    if dt.tzinfo is None or dt.utcoffset() is None:
        raise InvalidEvent(
            "occurred_at is a naive datetime; pass an aware one (datetime.now(UTC)) so the time is unambiguous"
        )
    return dt.astimezone(UTC)
