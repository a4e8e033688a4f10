"""The page shapes of the query API, as one question put to both engines.

Each shape is an ``EventFilters`` (what the API hands ``EventReader.page``)
plus an optional keyset position; ``pg_page_sql`` renders the same question
as the SQL a PostgreSQL expert would write against ``postgres.SCHEMA``.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from clickhouse_connect.driver.client import Client

from benchmarks.dataset import BIG_WORKSPACE, RARE_ACTOR_SEARCH, Dataset
from benchmarks.postgres import PG_SEARCH_TEXT
from query_api.cursor import Position
from query_api.filters import EventFilters
from query_api.search import Search, SearchLimits, parse_search
from query_api.timeline import BucketSize

PAGE_SIZE = 50
EXAMPLES = Path(__file__).resolve().parents[1] / "clickhouse" / "data_teams"
_BENCH_SEARCH = SearchLimits(max_chars=1000, max_terms=20)
PG_COLUMNS = (
    "id, occurred_at, action, category, actor_kind, actor_id, actor_display, target_kind, target_id,"
    " target_display, payload, ip, user_agent, request_id, service"
)


@dataclass(frozen=True)
class Shape:
    name: str
    workspace_id: str
    filters: EventFilters
    after: Position | None = None

    def query_string(self) -> dict[str, str]:
        """The same question as query-string parameters of ``GET .../audit/events``."""
        return self.filters.canonical()


def _search(q: str) -> Search:
    search = parse_search(q, _BENCH_SEARCH)
    assert search is not None
    return search


def build_shapes(client: Client, data: Dataset) -> list[Shape]:
    """The shapes of the query API issue, on the big workspace (the hardest case)."""
    table = data.table
    ws = BIG_WORKSPACE
    person = client.query(
        f"SELECT actor_display FROM {table} WHERE workspace_id = {{ws:String}} AND actor_kind = 'user'"
        " AND actor_display != '' GROUP BY actor_display ORDER BY count() DESC LIMIT 1",
        parameters={"ws": ws},
    ).result_rows[0][0]
    person_search = str(person).split("@")[0] + "@"
    mid = data.start + (data.end - data.start) / 2
    total = int(client.query(f"SELECT count() FROM {table} WHERE workspace_id = {{ws:String}}",
                             parameters={"ws": ws}).result_rows[0][0])
    deep = client.query(
        f"SELECT occurred_at, id FROM {table} WHERE workspace_id = {{ws:String}}"
        f" ORDER BY occurred_at DESC, id DESC LIMIT 1 OFFSET {max(total * 9 // 10, 0)}",
        parameters={"ws": ws},
    ).result_rows[0]
    from clickhouse.events import as_utc as _as_utc

    position = Position(_as_utc(deep[0]), deep[1])
    return [
        Shape("no filter", ws, EventFilters()),
        Shape("category", ws, EventFilters(category="members")),
        Shape("actor substring", ws, EventFilters(actor=person_search)),
        Shape("rare actor", ws, EventFilters(actor=RARE_ACTOR_SEARCH)),
        Shape("target kind", ws, EventFilters(target_kind="integration")),
        Shape("time window (7 d)", ws, EventFilters(since=mid, until=mid + timedelta(days=7))),
        Shape("all composed", ws, EventFilters(category="integrations", actor=person_search,
                                               target_kind="integration", since=mid - timedelta(days=90),
                                               until=mid + timedelta(days=30))),
        Shape("deep cursor (90%)", ws, EventFilters(), position),
        *search_shapes(person_search, mid),
    ]


def search_shapes(person_search: str, mid: datetime) -> list[Shape]:
    """The search pages of issue 18 on the big workspace: a common term, a rare one, qualifiers, all filters."""
    ws = BIG_WORKSPACE
    return [
        Shape("search common term", ws, EventFilters(q=_search("succeeded"))),
        Shape("search rare term", ws, EventFilters(q=_search(RARE_ACTOR_SEARCH))),
        Shape("search qualifiers", ws, EventFilters(q=_search(f"actor:{person_search} action:member -removed"))),
        Shape("search + all filters", ws, EventFilters(
            category="integrations", actor=person_search, target_kind="integration",
            action="INTEGRATION_SCOPES_CHANGED", since=mid - timedelta(days=90), until=mid + timedelta(days=30),
            q=_search('"issues:write" -slack'))),
    ]


def build_timeline_shapes(data: Dataset, page_shapes: list[Shape]) -> list[Shape]:
    """The timeline questions of issue 18 on the big workspace: a year (the target), the whole history
    (no bounds: the workspace's first/last event), a year with a filter, a week. The actor searched is
    the one of the page shapes."""
    ws = BIG_WORKSPACE
    year = EventFilters(since=data.end - timedelta(days=365), until=data.end)
    pages = {s.name: s for s in page_shapes}
    return [
        Shape("timeline 1 y", ws, year),
        Shape("timeline, no bounds", ws, EventFilters()),
        Shape("timeline 1 y, category", ws, EventFilters(category="members", since=year.since, until=year.until)),
        Shape("timeline 1 y, actor substring", ws, EventFilters(actor=pages["actor substring"].filters.actor,
                                                                 since=year.since, until=year.until)),
        Shape("timeline 7 d", ws, EventFilters(since=data.end - timedelta(days=7), until=data.end)),
    ]


def _pg_where(shape: Shape) -> tuple[list[str], dict[str, Any]]:
    """The filters as PostgreSQL conditions (``until`` inclusive, as the API means it)."""
    f = shape.filters
    clauses = ["workspace_id = %(ws)s"]
    params: dict[str, Any] = {"ws": shape.workspace_id}
    if f.category:
        clauses.append("category = %(category)s")
        params["category"] = f.category
    if f.target_kind:
        clauses.append("target_kind = %(target_kind)s")
        params["target_kind"] = f.target_kind
    if f.action:
        clauses.append("action = %(action)s")
        params["action"] = f.action
    if f.actor:
        clauses.append("lower(actor_display) LIKE %(actor)s")
        escaped = f.actor.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        params["actor"] = f"%{escaped}%"
    if f.since:
        clauses.append("occurred_at >= %(since)s")
        params["since"] = f.since
    if f.until:
        clauses.append("occurred_at <= %(until)s")
        params["until"] = f.until
    for n, term in enumerate(f.q.terms if f.q else ()):
        name = f"q{n}"
        escaped = term.value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        params[name] = f"%{escaped}%"
        on_fields = (" OR ".join(f"lower({c}) LIKE %({name})s" for c in term.fields) if term.qualifier
                     else f"{PG_SEARCH_TEXT} LIKE %({name})s")
        if term.exclude:
            clauses.append(f"NOT ({on_fields})")
        else:
            clauses.append(f"{PG_SEARCH_TEXT} LIKE %({name})s" + (f" AND ({on_fields})" if term.qualifier else ""))
    return clauses, params


def pg_page_sql(shape: Shape, limit: int = PAGE_SIZE) -> tuple[str, dict[str, Any]]:
    """The page as PostgreSQL SQL: keyset on the (occurred_at, id) row value, newest first."""
    clauses, params = _pg_where(shape)
    if shape.after is not None:
        clauses.append("(occurred_at, id) < (%(after_t)s, %(after_id)s)")
        params["after_t"] = shape.after.occurred_at
        params["after_id"] = shape.after.id
    sql = (f"SELECT {PG_COLUMNS} FROM events WHERE {' AND '.join(clauses)}"
           f" ORDER BY occurred_at DESC, id DESC LIMIT {int(limit) + 1}")
    return sql, params


# The bucket a PostgreSQL expert writes for each rung of the ladder: date_bin on the Unix epoch for
# fixed steps (weeks from a Monday, like the engine's toMonday), date_trunc for calendar ones.
_PG_TRUNC = {(1, "MONTH"): "month", (3, "MONTH"): "quarter", (1, "YEAR"): "year", (10, "YEAR"): "decade"}


def pg_timeline_sql(shape: Shape, size: BucketSize, first: Any, last: Any) -> tuple[str, dict[str, Any]]:
    """The timeline as PostgreSQL SQL: GROUP BY the bucket over the index's (workspace_id, occurred_at)
    range, empty buckets from generate_series (first..last: aligned bucket starts, UTC)."""
    clauses, params = _pg_where(shape)
    if size.months:
        bucket = f"date_trunc('{_PG_TRUNC[(size.count, size.unit)]}', occurred_at AT TIME ZONE 'UTC')"
        params.update(first=first.replace(tzinfo=None), last=last.replace(tzinfo=None))
    else:
        origin = "1970-01-05 00:00+00" if size.unit == "WEEK" else "1970-01-01 00:00+00"
        bucket = f"date_bin(interval '{size.fixed.total_seconds():.0f} seconds', occurred_at, timestamptz '{origin}')"
        params.update(first=first, last=last)
    step = f"{size.count} {size.unit.lower()}"
    sql = (f"SELECT s.bucket, coalesce(c.events, 0) FROM generate_series(%(first)s, %(last)s, interval '{step}')"
           f" AS s(bucket) LEFT JOIN (SELECT {bucket} AS bucket, count(*) AS events FROM events"
           f" WHERE {' AND '.join(clauses)} GROUP BY 1) AS c USING (bucket) ORDER BY 1")
    return sql, params


@dataclass(frozen=True)
class Question:
    """One data-team question in both engines' SQL, over the same rows.

    ``example`` names the documented query (``clickhouse/data_teams/<example>.sql``, shown in
    docs/data-teams.md) that the benchmark runs as the analyst would, against the events table;
    ``ch_sql`` is used when there is none. ``months`` / ``days`` set the window: from that long
    before the dataset's last day (UTC midnight), the ``from_day`` parameter of both engines.
    """

    ch_sql: str
    pg_sql: str
    example: str = ""
    months: int = 0
    days: int = 0

    def from_day(self, end: date) -> date:
        """The first day of the window ending on ``end``'s day (months back clamp to a month's last day)."""
        month = end.year * 12 + end.month - 1 - self.months
        year, month0 = divmod(month, 12)
        last = calendar.monthrange(year, month0 + 1)[1]
        return date(year, month0 + 1, min(end.day, last)) - timedelta(days=self.days)

    def ch_query(self, table: str) -> str:
        """Our SQL: the documented example (its ``audit.events`` made the benchmark's table), or ``ch_sql``."""
        sql = (EXAMPLES / f"{self.example}.sql").read_text() if self.example else self.ch_sql
        return sql.replace("audit.events", table).replace("{table}", table)


# The data team's questions. The windows start at a UTC midnight (the daily summaries keep
# days): PostgreSQL compares its timestamptz with the same date at midnight UTC (the server's time zone is UTC).
QUESTIONS: dict[str, Question] = {
    "role changes per week (1 y)": Question(
        "",
        "SELECT date_trunc('week', occurred_at) AS week, payload->'after'->>'role' AS new_role, count(*)"
        " FROM events WHERE action = 'MEMBER_ROLE_CHANGED' AND occurred_at >= %(from_day)s"
        " GROUP BY week, new_role ORDER BY week, new_role",
        example="role_changes_per_week_all_workspaces", months=12,
    ),
    "tokens minted per actor (last quarter)": Question(
        "",
        "SELECT workspace_id, actor_display, count(*) AS minted FROM events WHERE action = 'API_TOKEN_CREATED'"
        " AND occurred_at >= %(from_day)s"
        " GROUP BY workspace_id, actor_display ORDER BY minted DESC, workspace_id, actor_display",
        example="tokens_minted_per_actor", months=3,
    ),
    "everything touching one integration": Question(
        # position() first: a JSON value equal to 'int_github' (nothing in it JSON would escape) is a substring of
        # the payload, so the fast substring scan drops almost every row before any JSON is parsed.
        "SELECT id, occurred_at, action, actor_display FROM {table} WHERE workspace_id = '" + BIG_WORKSPACE + "'"
        " AND (target_id = 'int_github' OR (position(payload, 'int_github') > 0"
        " AND (JSONExtractString(payload, 'after', 'integration_id') = 'int_github'"
        " OR JSONExtractString(payload, 'before', 'integration_id') = 'int_github'))) ORDER BY occurred_at, id",
        "SELECT id, occurred_at, action, actor_display FROM events WHERE workspace_id = '" + BIG_WORKSPACE + "'"
        " AND (target_id = 'int_github' OR payload->'after'->>'integration_id' = 'int_github'"
        " OR payload->'before'->>'integration_id' = 'int_github') ORDER BY occurred_at, id",
    ),
    # The questions a column store exists for: a long time range across all workspaces, grouped.
    "events per day and category (1 y, all workspaces)": Question(
        "",
        "SELECT (occurred_at AT TIME ZONE 'UTC')::date AS day, category, count(*) AS events FROM events"
        " WHERE occurred_at >= %(from_day)s GROUP BY day, category ORDER BY day, category",
        example="events_per_day_by_category", months=12,
    ),
    "top 20 actors per workspace (30 d)": Question(
        "",
        "SELECT workspace_id, actor_display, events FROM (SELECT workspace_id, actor_display, count(*) AS events,"
        " row_number() OVER (PARTITION BY workspace_id ORDER BY count(*) DESC, actor_display) AS rank"
        " FROM events WHERE occurred_at >= %(from_day)s"
        " GROUP BY workspace_id, actor_display) AS ranked WHERE rank <= 20"
        " ORDER BY workspace_id, events DESC, actor_display",
        example="top_actors_per_workspace", days=30,
    ),
    "distinct active actors per workspace per month (1 y)": Question(
        "",
        "SELECT workspace_id, date_trunc('month', occurred_at AT TIME ZONE 'UTC') AS month,"
        " count(DISTINCT actor_id) AS actors FROM events WHERE occurred_at >= %(from_day)s"
        " GROUP BY workspace_id, month ORDER BY workspace_id, month",
        example="active_actors_per_month", months=12,
    ),
}
