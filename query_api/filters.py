"""The question a reader asks: filters, parsed and checked once, in a canonical form.

Dates: ``since=2026-03-01`` means from 2026-03-01T00:00:00Z; ``until=2026-03-31``
means up to the end of that UTC day, inclusive. Datetimes must carry an
offset (``2026-03-01T09:00:00+02:00`` or ``...Z``): a time without a zone is
ambiguous and is refused. Any year from 0001 to 9999 is accepted: ``until`` is
kept *inclusive* (its last microsecond), so the end of 9999-12-31 needs no
"next day", and a datetime whose offset moves it past year 1 or 9999 is
clamped there (no event can be that far out: the table holds 1900..2299).

``q`` is the free-text search (query_api/search.py): parsed here like the other filters, bounded by the
settings' ``api.search_max_*``, and kept in its canonical text for cursors.

Each filter is kept twice: its meaning (``canonical()``, what cursors compare)
and its text as the user gave it (``echo()``, what answers show).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field, fields
from datetime import UTC, date, datetime, timedelta
from typing import Any

from config.settings import ApiSettings
from query_api.errors import InvalidFilter
from query_api.search import Search, SearchLimits, parse_search
from schemas.catalog import Catalog

MAX_ACTOR_LENGTH = 200
_ACTION = re.compile(r"^[A-Z][A-Z0-9_]{0,99}$")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_COMPACT_DATE = re.compile(r"\d{8}")
# ISO 8601 as fromisoformat reads it, with the date part in its extended form (dashes).
_DATETIME = re.compile(
    r"(?P<date>\d{4}-\d{2}-\d{2})[Tt ]\d{2}(:\d{2}(:\d{2}([.,]\d{1,6})?)?)?(?P<zone>[Zz]|[+-]\d{2}(:?\d{2})?)?"
)


def search_limits(api: ApiSettings) -> SearchLimits:
    """The bounds on ``q`` the settings give."""
    return SearchLimits(max_chars=api.search_max_chars, max_terms=api.search_max_terms)


DEFAULT_SEARCH_LIMITS = search_limits(ApiSettings())
_FIRST = datetime.min.replace(tzinfo=UTC)
_LAST = datetime.max.replace(tzinfo=UTC)
_EXAMPLES = "use 2026-03-01 or 2026-03-01T09:30:00Z"
FILTER_NAMES = ("category", "actor", "target_kind", "action", "since", "until", "q")
# A cursor or a ticket carries a q that was checked under the settings' limits when it was issued; read back,
# it is parsed again under these (generous) ones, so lowering a limit does not break a page in progress.
_ISSUED_SEARCH = SearchLimits(max_chars=100_000, max_terms=1_000)


@dataclass(frozen=True)
class EventFilters:
    category: str | None = None
    actor: str | None = None
    target_kind: str | None = None
    action: str | None = None
    since: datetime | None = None  # inclusive, UTC
    until: datetime | None = None  # inclusive, UTC (the last microsecond that matches)
    q: Search | None = None  # free-text search, parsed (query_api/search.py); canonical text in cursors
    # The filters as the user wrote them, for answers; not part of the question's identity.
    given: tuple[tuple[str, str], ...] = field(default=(), compare=False)

    def canonical(self) -> dict[str, str]:
        """Only the filters that are set, as strings; equal questions give equal dicts."""
        out: dict[str, str] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "given" or value is None:
                continue
            out[f.name] = value.isoformat() if isinstance(value, datetime) else str(value)
        return out

    def echo(self) -> dict[str, str]:
        """The filters as the user gave them (``until=2026-06-30`` stays that, not an internal bound)."""
        return dict(self.given) if self.given else self.canonical()

    @classmethod
    def from_canonical(cls, data: dict[str, Any], given: dict[str, Any] | None = None) -> EventFilters:
        values: dict[str, Any] = {}
        for key in ("category", "actor", "target_kind", "action"):
            if data.get(key) is not None:
                values[key] = str(data[key])
        for key in ("since", "until"):
            if data.get(key) is not None:
                values[key] = datetime.fromisoformat(str(data[key]))
        if data.get("q") is not None:
            values["q"] = parse_search(str(data["q"]), _ISSUED_SEARCH)
        echo = tuple((str(k), str(v)) for k, v in (given or {}).items() if k in FILTER_NAMES)
        return cls(**values, given=echo)

    @property
    def is_empty(self) -> bool:
        return not self.canonical()


def _to_utc(moment: datetime) -> datetime:
    """``moment`` in UTC; an offset that moves it before year 1 or past 9999 clamps it there."""
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        offset = moment.utcoffset() or timedelta(0)
        return _FIRST if offset > timedelta(0) else _LAST


def parse_time(name: str, raw: str, *, end_of_day: bool) -> datetime:
    """A UTC datetime for a ``since``/``until`` value; raises InvalidFilter naming the problem.

    ``end_of_day`` (for ``until``): a plain date means its last microsecond.
    """
    text = raw.strip()
    if _DATE.fullmatch(text):
        try:
            day = date.fromisoformat(text)
        except ValueError:
            raise InvalidFilter(
                f"{name}={raw!r} is not a real date (years 0001-9999); use YYYY-MM-DD, e.g. 2026-03-01.", name
            ) from None
        start = datetime(day.year, day.month, day.day, tzinfo=UTC)
        return start.replace(hour=23, minute=59, second=59, microsecond=999999) if end_of_day else start
    if _COMPACT_DATE.fullmatch(text):
        raise InvalidFilter(
            f"{name}={raw!r} has no dashes; write the date as YYYY-MM-DD, e.g. {text[:4]}-{text[4:6]}-{text[6:]}.",
            name,
        )
    match = _DATETIME.fullmatch(text)
    if match is None:
        raise InvalidFilter(f"{name}={raw!r} is not a date or datetime; {_EXAMPLES}.", name)
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00").replace(",", "."))
    except ValueError:
        raise InvalidFilter(
            f"{name}={raw!r} is not a real date and time (years 0001-9999, hours 00-23); {_EXAMPLES}.", name
        ) from None
    if match["zone"] is None or moment.tzinfo is None:
        raise InvalidFilter(
            f"{name}={raw!r} has no time zone; add one (2026-03-01T09:30:00Z or +02:00) or pass a plain date.", name
        )
    return _to_utc(moment)


def _close_matches(value: str, choices: Iterable[str]) -> str:
    """" Did you mean A, B?" for the nearest choices (difflib), or nothing."""
    near = difflib.get_close_matches(value, sorted(choices), n=3, cutoff=0.6)
    return f" Did you mean {', '.join(near)}?" if near else ""


def parse_filters(
    catalog: Catalog,
    *,
    category: str | None,
    actor: str | None,
    target_kind: str | None,
    action: str | None,
    since: str | None,
    until: str | None,
    q: str | None = None,
    search_limits: SearchLimits | None = None,
) -> EventFilters:
    """Check every filter and return them in canonical form; raises InvalidFilter naming the field.

    ``search_limits`` bound ``q`` (the settings' ``api.search_max_*``); a caller that passes none gets
    ``DEFAULT_SEARCH_LIMITS``, the settings' defaults.
    """
    raw = {"category": category, "actor": actor, "target_kind": target_kind, "action": action,
           "since": since, "until": until, "q": q}
    if category is not None and category.strip().lower() in {"", "all"}:
        category = None
    if category is not None and category not in catalog.category_keys:
        raise InvalidFilter(
            f"category={category!r} is not a category; use one of: {', '.join(sorted(catalog.category_keys))}.",
            "category",
        )
    if target_kind is not None and target_kind.strip() == "":
        target_kind = None
    if target_kind is not None and target_kind not in catalog.target_kind_keys:
        raise InvalidFilter(
            f"target_kind={target_kind!r} is not a target kind; use one of: "
            f"{', '.join(sorted(catalog.target_kind_keys))}.",
            "target_kind",
        )
    if action is not None and action.strip() == "":
        action = None
    if action is not None:
        names = catalog.actions.keys()
        if not _ACTION.match(action):
            hint = _close_matches(action[:100].strip().upper(), names)
            raise InvalidFilter(
                f"action={action[:60]!r} is not an action name (like MEMBER_ROLE_CHANGED).{hint}", "action"
            )
        if action not in names:
            raise InvalidFilter(
                f"action={action!r} is not in the action catalog (GET /v1/audit/catalog lists them)."
                f"{_close_matches(action, names)}",
                "action",
            )
    if actor is not None:
        actor = actor.strip()
        if not actor:
            actor = None
        elif len(actor) > MAX_ACTOR_LENGTH:
            raise InvalidFilter(
                f"actor is {len(actor)} characters long; search with at most {MAX_ACTOR_LENGTH}.", "actor"
            )
        elif any(ord(ch) < 32 for ch in actor):
            raise InvalidFilter("actor contains control characters; search with plain text such as 'alex@'.",
                                "actor")
    since_at = parse_time("since", since, end_of_day=False) if since and since.strip() else None
    until_at = parse_time("until", until, end_of_day=True) if until and until.strip() else None
    if since_at and until_at and since_at > until_at:
        raise InvalidFilter(f"since ({since}) is after until ({until}); swap them.", "since")
    search = parse_search(q, search_limits or DEFAULT_SEARCH_LIMITS) if q is not None else None
    kept = {"category": category, "actor": actor, "target_kind": target_kind, "action": action,
            "since": since_at, "until": until_at, "q": search}
    given = tuple((k, str(raw[k]).strip()) for k in FILTER_NAMES if kept[k] is not None)
    return EventFilters(category, actor.lower() if actor else None, target_kind, action, since_at, until_at,
                        search, given=given)
