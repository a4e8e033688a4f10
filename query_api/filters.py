"""The question a reader asks: filters, parsed and checked once, in a canonical form.

Dates: ``since=2026-03-01`` means from 2026-03-01T00:00:00Z; ``until=2026-03-31``
means up to the end of that UTC day, inclusive. Datetimes must carry an
offset (``2026-03-01T09:00:00+02:00`` or ``...Z``): a time without a zone is
ambiguous and is refused.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from query_api.errors import InvalidFilter
from schemas.catalog import Catalog

MAX_ACTOR_LENGTH = 200
_ACTION = re.compile(r"^[A-Z][A-Z0-9_]{0,99}$")


@dataclass(frozen=True)
class EventFilters:
    category: str | None = None
    actor: str | None = None
    target_kind: str | None = None
    action: str | None = None
    since: datetime | None = None  # inclusive
    until: datetime | None = None  # exclusive

    def canonical(self) -> dict[str, str]:
        """Only the filters that are set, as strings; equal questions give equal dicts."""
        out: dict[str, str] = {}
        for key, value in asdict(self).items():
            if value is None:
                continue
            out[key] = value.isoformat() if isinstance(value, datetime) else str(value)
        return out

    @classmethod
    def from_canonical(cls, data: dict[str, Any]) -> EventFilters:
        values: dict[str, Any] = {}
        for key in ("category", "actor", "target_kind", "action"):
            if data.get(key) is not None:
                values[key] = str(data[key])
        for key in ("since", "until"):
            if data.get(key) is not None:
                values[key] = datetime.fromisoformat(str(data[key]))
        return cls(**values)

    @property
    def is_empty(self) -> bool:
        return not self.canonical()


def parse_time(name: str, raw: str, *, end_of_day: bool) -> datetime:
    """A UTC datetime for a ``since``/``until`` value; raises InvalidFilter with an example."""
    text = raw.strip()
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        try:
            day = date.fromisoformat(text)
        except ValueError:
            raise InvalidFilter(f"{name}={raw!r} is not a real date; use YYYY-MM-DD, e.g. 2026-03-01.") from None
        start = datetime(day.year, day.month, day.day, tzinfo=UTC)
        return start + timedelta(days=1) if end_of_day else start
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise InvalidFilter(
            f"{name}={raw!r} is not a date or datetime; use 2026-03-01 or 2026-03-01T09:30:00Z."
        ) from None
    if moment.tzinfo is None:
        raise InvalidFilter(
            f"{name}={raw!r} has no time zone; add one (2026-03-01T09:30:00Z or +02:00) or pass a plain date."
        )
    moment = moment.astimezone(UTC)
    return moment + timedelta(microseconds=1) if end_of_day else moment


def parse_filters(
    catalog: Catalog,
    *,
    category: str | None,
    actor: str | None,
    target_kind: str | None,
    action: str | None,
    since: str | None,
    until: str | None,
) -> EventFilters:
    """Check every filter and return them in canonical form; raises InvalidFilter."""
    if category is not None and category.strip().lower() in {"", "all"}:
        category = None
    if category is not None and category not in catalog.category_keys:
        raise InvalidFilter(
            f"category={category!r} is not a category; use one of: {', '.join(sorted(catalog.category_keys))}."
        )
    if target_kind is not None and target_kind.strip() == "":
        target_kind = None
    if target_kind is not None and target_kind not in catalog.target_kind_keys:
        raise InvalidFilter(
            f"target_kind={target_kind!r} is not a target kind; use one of: "
            f"{', '.join(sorted(catalog.target_kind_keys))}."
        )
    if action is not None and action.strip() == "":
        action = None
    if action is not None and not _ACTION.match(action):
        raise InvalidFilter(f"action={action[:60]!r} is not an action name (like MEMBER_ROLE_CHANGED).")
    if actor is not None:
        actor = actor.strip()
        if not actor:
            actor = None
        elif len(actor) > MAX_ACTOR_LENGTH:
            raise InvalidFilter(f"actor is {len(actor)} characters long; search with at most {MAX_ACTOR_LENGTH}.")
        elif any(ord(ch) < 32 for ch in actor):
            raise InvalidFilter("actor contains control characters; search with plain text such as 'alex@'.")
    since_at = parse_time("since", since, end_of_day=False) if since else None
    until_at = parse_time("until", until, end_of_day=True) if until else None
    if since_at and until_at and since_at >= until_at:
        raise InvalidFilter(f"since ({since}) is after until ({until}); swap them.")
    return EventFilters(category, actor.lower() if actor else None, target_kind, action, since_at, until_at)
