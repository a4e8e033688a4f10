"""Reading the events table: pages and one event (the export is query_api/export.py).

Every read orders by the table's sort key, newest first, and collapses
copies of a row that the ReplacingMergeTree has not merged yet. Copies share
the whole sort key, so they are adjacent in that order:

- pages read ``limit + 1 + slack`` rows with a plain ``LIMIT`` (which the
  engine pushes into each part's in-order read, so it stops after a few
  granules) and drop adjacent copies here; in the rare case copies ate into
  the page, it reads on from the last row. ``LIMIT 1 BY`` or ``FINAL`` in
  the engine would do the same but made a page read the whole workspace
  (docs/performance.md has the measurements).
- exports (query_api/export.py) use ``LIMIT 1 BY occurred_at, id`` inside
  chunks bounded by a time window and a keyset position.

All values reach the engine through server-side ``{name:Type}`` parameters,
never through string formatting.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from clickhouse_connect.driver.client import Client

from clickhouse.events import SEARCH_TEXT, SELECT_COLUMNS, row_to_event
from clickhouse.events import as_utc as _as_utc
from clickhouse.pool import ClientSource, SharedClient
from query_api.cursor import Position
from query_api.density import DensityMemo
from query_api.filters import EventFilters
from query_api.search import Search

# Extra rows a page reads to absorb copies not merged yet without a second query.
PAGE_SLACK = 8
# How far back from its top a page looks first (WindowPlan): most pages fill from the newest days and
# so touch one partition. The next window holds the missing rows this many times over at the density
# the first one matched; after this many bounded windows, one query reads the rest of the history.
PAGE_FIRST_WINDOW = timedelta(days=2)
PAGE_WINDOW_MARGIN = 2.0
PAGE_BOUNDED_WINDOWS = 2
# A window that would span longer than this is read as the rest of the history at once. A window is
# read whole even when its newest rows fill the page (the engine reads every part of it in reverse
# order before the limit stops it), so a filter that needs three months is read as three months,
# not as the whole history: at 31 days a workspace's filter matching ~1 event in 200 read its whole
# year, twice the CPU (docs/performance.md, "Page windows up to a year").
PAGE_MAX_WINDOW = timedelta(days=366)
# How many (workspace, filters) densities pages remember, and for how long (query_api/density.py).
PAGE_DENSITY_ENTRIES = 4096
PAGE_DENSITY_SECONDS = 600.0
# Each part is read in reverse key order; without buffering, a stream stops at the page's
# rows instead of reading ahead. Pages keep the decompressed blocks they read; exports do not, so
# one export cannot evict every page's blocks (docs/performance.md has both measured).
PAGE_SETTINGS = {"read_in_order_use_buffering": 0, "use_uncompressed_cache": 1}


@dataclass(frozen=True)
class Query:
    """A WHERE clause and its parameters, in two parts.

    ``key_where`` (the workspace, time bounds, keyset position and the low-cardinality equalities) is
    cheap to test on every row a query reads; ``text_where`` (the actor substring and the search) needs
    the text columns. A page tests the first as PREWHERE, so that the text columns are read only where
    rows pass it (docs/performance.md, "Key conditions as PREWHERE").
    """

    key_where: str
    parameters: dict[str, Any]
    text_where: str = ""

    @property
    def where(self) -> str:
        """Both parts as one condition (exports and the timeline)."""
        return f"{self.key_where} AND {self.text_where}" if self.text_where else self.key_where


def _like_pattern(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _search_clauses(search: Search, params: dict[str, Any]) -> list[str]:
    """One clause per term of ``q``, each value a ``{qN:String}`` LIKE pattern (query_api/search.py: meaning).

    A term that must be present is tested on ``SEARCH_TEXT`` (every searched column, the expression the
    skip index of migration 0008 covers, so the engine skips granules that cannot hold it); a qualified
    one also on its own columns. An excluded term is only the negation of its column test: no index
    skips granules for an absence.
    """
    clauses = []
    for n, term in enumerate(search.terms):
        name = f"q{n}"
        params[name] = _like_pattern(term.value)
        on_fields = " OR ".join(
            f"lowerUTF8({column}) LIKE {{{name}:String}}" for column in term.fields
        ) if term.qualifier else f"{SEARCH_TEXT} LIKE {{{name}:String}}"
        if term.exclude:
            clauses.append(f"NOT ({on_fields})")
        elif term.qualifier:
            clauses.append(f"{SEARCH_TEXT} LIKE {{{name}:String}} AND ({on_fields})")
        else:
            clauses.append(on_fields)
    return clauses


# What DateTime64(6, 'UTC') holds. Bounds outside it are dropped (nothing lies beyond them) or make the
# query match nothing, so a filter for year 1 or 9999 never reaches the engine as a value it cannot parse.
ENGINE_MIN = datetime(1900, 1, 1, tzinfo=UTC)
ENGINE_MAX = datetime(2299, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)
_NOTHING = "0"


def _time_bound(column_op: str, name: str, moment: datetime, params: dict[str, Any]) -> str | None:
    """``occurred_at <op> {name}`` for a moment anywhere in years 1..9999, or None when it bounds nothing.

    ``>=``: below the engine's range it bounds nothing; above it nothing matches. ``<`` and ``<=``
    mirror that.
    """
    moment = moment.astimezone(UTC)
    if column_op == ">=":
        if moment <= ENGINE_MIN:
            return None
        if moment > ENGINE_MAX:
            return _NOTHING
    elif column_op == "<":
        if moment > ENGINE_MAX:
            return None
        if moment <= ENGINE_MIN:
            return _NOTHING
    else:  # "<="
        if moment >= ENGINE_MAX:
            return None
        if moment < ENGINE_MIN:
            return _NOTHING
    params[name] = ch_time(moment)
    return f"occurred_at {column_op} {{{name}:DateTime64(6, 'UTC')}}"


def build_where(workspace_id: str, filters: EventFilters, after: Position | None = None,
                window: tuple[datetime | None, datetime | None] = (None, None)) -> Query:
    """The WHERE clause and its parameters for a workspace, filters, keyset position and time window.

    ``window`` is (from, to): from inclusive, to exclusive, either open. ``filters.until`` is inclusive.
    """
    clauses = ["workspace_id = {ws:String}"]
    params: dict[str, Any] = {"ws": workspace_id}
    bounds = [(">=", "win_lo", window[0]), ("<", "win_hi", window[1]),
              (">=", "since", filters.since), ("<=", "until", filters.until)]
    for op, name, moment in bounds:
        if moment is not None and (clause := _time_bound(op, name, moment, params)) is not None:
            clauses.append(clause)
    if filters.category:
        clauses.append("category = {category:String}")
        params["category"] = filters.category
    if filters.target_kind:
        clauses.append("target_kind = {target_kind:String}")
        params["target_kind"] = filters.target_kind
    if filters.action:
        clauses.append("action = {action:String}")
        params["action"] = filters.action
    text_clauses = []
    if filters.actor:
        # lower(actor_display) is the expression the ngram skip index covers.
        text_clauses.append("lower(actor_display) LIKE {actor:String}")
        params["actor"] = _like_pattern(filters.actor.lower())
    if filters.q is not None:
        text_clauses.extend(_search_clauses(filters.q, params))
    if after is not None:
        clauses.append(
            "occurred_at <= {after_t:DateTime64(6, 'UTC')}"
            " AND (occurred_at < {after_t:DateTime64(6, 'UTC')} OR id < {after_id:UUID})"
        )
        params["after_t"] = ch_time(after.occurred_at)
        params["after_id"] = str(after.id)
    return Query(" AND ".join(clauses), params, " AND ".join(text_clauses))


Window = tuple[datetime | None, datetime | None]


class WindowPlan:
    """Disjoint time windows, newest first, that together cover everything a page may show.

    The first window is the newest ``PAGE_FIRST_WINDOW`` below the page's top
    (the cursor, ``until``, or now) — or, when an earlier page with the same
    filters measured how densely they match (``density``, rows per second),
    one sized from that, or the whole history at once for a rare filter.
    Each next one is sized from how densely
    the windows so far matched: long enough to hold the rows still missing
    ``PAGE_WINDOW_MARGIN`` times over, so a filter that matched a few rows a
    day reads weeks, not the whole history, and one that matched nothing
    reads the rest at once, as does one that would need more than
    ``PAGE_MAX_WINDOW``. After ``PAGE_BOUNDED_WINDOWS`` bounded windows the
    next is the rest of the history, which caps a page's queries.

    Copies of an event share its occurred_at, so they never straddle two windows.
    """

    def __init__(self, after: Position | None, filters: EventFilters, now: datetime | None = None,
                 density: float | None = None) -> None:
        top = after.occurred_at if after is not None else filters.until
        # Windows are sized and placed inside the engine's range, whatever year the filter names.
        self.anchor = min(max(top or now or datetime.now(UTC), ENGINE_MIN), ENGINE_MAX)
        self._since = filters.since
        self._lower: datetime | None = self.anchor
        self._bounded = 0
        self._density = density

    def next(self, found: int, wanted: int) -> Window | None:
        """The window after the ones read so far, which matched ``found`` rows; None when all are read."""
        if self._lower is None or found >= wanted:
            return None
        covered = self.anchor - self._lower
        if self._bounded == 0:
            span: timedelta | None = PAGE_FIRST_WINDOW
            if self._density is not None:
                span = _hinted_span(self._density, wanted)
        elif found == 0 or self._bounded >= PAGE_BOUNDED_WINDOWS:
            span = None
        else:
            span = covered * ((wanted - found) / found * PAGE_WINDOW_MARGIN)
            if span > PAGE_MAX_WINDOW:
                span = None
        upper = self._lower if self._bounded else None
        lower = None if span is None else self._lower - span
        if lower is not None and self._since is not None and lower <= self._since:
            lower = None  # ``since`` bounds the query anyway
        self._lower = lower
        self._bounded += 1
        return (lower, upper)


def _hinted_span(density: float, wanted: int) -> timedelta | None:
    """The first window for a filter known to match ``density`` rows a second: never narrower than the
    default, None (the whole history) when it would be longer than ``PAGE_MAX_WINDOW``."""
    if density <= 0:
        return None
    seconds = wanted / density * PAGE_WINDOW_MARGIN
    if seconds > PAGE_MAX_WINDOW.total_seconds():
        return None
    return max(timedelta(seconds=seconds), PAGE_FIRST_WINDOW)


def ch_time(moment: datetime) -> str:
    """The engine's text for a UTC moment; the year is always four digits (strftime does not pad it)."""
    m = moment.astimezone(UTC)
    return f"{m.year:04d}-{m:%m-%d %H:%M:%S.%f}"


def _density(rows: Sequence[Sequence[Any]], top: datetime) -> float:
    """Rows per second of history between the page's top and its oldest row (0 if it found none)."""
    if not rows:
        return 0.0
    seconds = (top - _as_utc(rows[-1][1])).total_seconds()
    return len(rows) / max(seconds, 1.0)


def client_source(source: ClientSource | Client) -> ClientSource:
    """``source`` as something to lease clients from: a lone client is shared by every caller."""
    return source if isinstance(source, ClientSource) else SharedClient(source)


class EventReader:
    """Read access to one events table through a pool of clients (or one shared client).

    A page leases one client for all its queries; ``max_threads`` (None: the engine's
    default) caps the engine threads of each query, so that many pages run side by side.
    ``quiet_max_threads`` is what a page gets instead when no other page is being read: the
    cores the others would use are idle then, and a page that reads scattered granules (a rare
    actor, a rare term) finishes sooner on two (docs/performance.md, "Migration 0010").
    """

    def __init__(self, source: ClientSource | Client, table: str, max_threads: int | None = None,
                 quiet_max_threads: int | None = None) -> None:
        self._source = client_source(source)
        self._table = table
        self._settings: dict[str, Any] = dict(PAGE_SETTINGS)
        if max_threads is not None:
            self._settings["max_threads"] = int(max_threads)
        self._quiet_settings = dict(self._settings)
        if quiet_max_threads is not None:
            self._quiet_settings["max_threads"] = int(quiet_max_threads)
        self._reading = 0
        self._reading_lock = threading.Lock()
        self.densities = DensityMemo(PAGE_DENSITY_ENTRIES, PAGE_DENSITY_SECONDS)

    def page(self, workspace_id: str, filters: EventFilters, limit: int,
             after: Position | None) -> tuple[list[dict[str, Any]], bool]:
        """Up to ``limit`` events newest first, and whether more exist past them.

        The history is read in time windows backwards from the page's top (see
        ``WindowPlan``): most pages are answered from the newest days and so
        touch one partition instead of all of them.
        """
        with self._reading_lock:
            self._reading += 1
            settings = self._quiet_settings if self._reading == 1 else self._settings
        try:
            with self._source.lease() as client:
                unique, anchor = self._page_rows(client, workspace_id, filters, int(limit) + 1, after, settings)
        finally:
            with self._reading_lock:
                self._reading -= 1
        self.densities.put(workspace_id, filters, _density(unique, anchor))
        events = [row_to_event(r, workspace_id) for r in unique[:limit]]
        return events, len(unique) > limit

    def _page_rows(self, client: Client, workspace_id: str, filters: EventFilters, wanted: int,
                   after: Position | None, settings: dict[str, Any]) -> tuple[list[Sequence[Any]], datetime]:
        """Up to ``wanted`` rows (copies collapsed) and the top the windows were planned from."""
        unique: list[Sequence[Any]] = []
        position = after
        plan = WindowPlan(after, filters, density=self.densities.get(workspace_id, filters))
        while (window := plan.next(len(unique), wanted)) is not None:
            while True:
                fetch = wanted - len(unique) + PAGE_SLACK
                query = build_where(workspace_id, filters, position, window)
                rows = client.query(self._page_sql(query, fetch), parameters=query.parameters,
                                    settings=settings).result_rows
                for row in rows:
                    if unique and row[0] == unique[-1][0] and row[1] == unique[-1][1]:
                        continue  # a copy not merged yet
                    unique.append(row)
                if len(rows) < fetch or len(unique) >= wanted:
                    break
                last = unique[-1]
                position = Position(_as_utc(last[1]), last[0])
        return unique, plan.anchor

    def _page_sql(self, query: Query, fetch: int) -> str:
        """The newest ``fetch`` rows of ``query``; its text conditions only where its key conditions hold."""
        where = (f"PREWHERE {query.key_where} WHERE {query.text_where}" if query.text_where
                 else f"WHERE {query.key_where}")
        return f"SELECT {SELECT_COLUMNS} FROM {self._table} {where} ORDER BY occurred_at DESC, id DESC LIMIT {fetch}"

    def one(self, workspace_id: str, event_id: uuid.UUID) -> dict[str, Any] | None:
        sql = (
            f"SELECT {SELECT_COLUMNS} FROM {self._table}"
            " WHERE workspace_id = {ws:String} AND id = {id:UUID} LIMIT 1"
        )
        with self._source.lease() as client:
            rows = client.query(sql, parameters={"ws": workspace_id, "id": str(event_id)},
                                settings=self._settings).result_rows
        return row_to_event(rows[0], workspace_id) if rows else None
