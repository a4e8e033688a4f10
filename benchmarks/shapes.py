"""The page shapes of the query API, as one question put to both engines.

Each shape is an ``EventFilters`` (what the API hands ``EventReader.page``)
plus an optional keyset position; ``pg_page_sql`` renders the same question
as the SQL a PostgreSQL expert would write against ``postgres.SCHEMA``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from clickhouse_connect.driver.client import Client

from benchmarks.dataset import BIG_WORKSPACE, RARE_ACTOR_SEARCH, Dataset
from benchmarks.postgres import PG_SEARCH_TEXT
from query_api.cursor import Position
from query_api.filters import EventFilters
from query_api.search import Search, SearchLimits, parse_search

PAGE_SIZE = 50
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


def pg_page_sql(shape: Shape, limit: int = PAGE_SIZE) -> tuple[str, dict[str, Any]]:
    """The page as PostgreSQL SQL: keyset on the (occurred_at, id) row value, newest first."""
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
        clauses.append("occurred_at < %(until)s")
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
    if shape.after is not None:
        clauses.append("(occurred_at, id) < (%(after_t)s, %(after_id)s)")
        params["after_t"] = shape.after.occurred_at
        params["after_id"] = shape.after.id
    sql = (f"SELECT {PG_COLUMNS} FROM events WHERE {' AND '.join(clauses)}"
           f" ORDER BY occurred_at DESC, id DESC LIMIT {int(limit) + 1}")
    return sql, params


# The data team's questions, in each engine's SQL. {end} is the dataset's end, an ISO timestamp.
QUESTIONS: dict[str, tuple[str, str]] = {
    "role changes per week (1 y)": (
        "SELECT toMonday(occurred_at) AS week, JSONExtractString(payload, 'after', 'role') AS new_role,"
        " count() FROM {table} WHERE action = 'MEMBER_ROLE_CHANGED'"
        " AND occurred_at >= toDateTime64('{end}', 6, 'UTC') - INTERVAL 1 YEAR"
        " GROUP BY week, new_role ORDER BY week, new_role",
        "SELECT date_trunc('week', occurred_at) AS week, payload->'after'->>'role' AS new_role, count(*)"
        " FROM events WHERE action = 'MEMBER_ROLE_CHANGED'"
        " AND occurred_at >= timestamptz '{end}' - interval '1 year'"
        " GROUP BY week, new_role ORDER BY week, new_role",
    ),
    "tokens minted per actor (last quarter)": (
        "SELECT workspace_id, actor_display, count() AS minted FROM {table} WHERE action = 'API_TOKEN_CREATED'"
        " AND occurred_at >= toDateTime64('{end}', 6, 'UTC') - INTERVAL 3 MONTH"
        " GROUP BY workspace_id, actor_display ORDER BY minted DESC, workspace_id, actor_display",
        "SELECT workspace_id, actor_display, count(*) AS minted FROM events WHERE action = 'API_TOKEN_CREATED'"
        " AND occurred_at >= timestamptz '{end}' - interval '3 months'"
        " GROUP BY workspace_id, actor_display ORDER BY minted DESC, workspace_id, actor_display",
    ),
    "everything touching one integration": (
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
    "events per day and category (1 y, all workspaces)": (
        "SELECT toDate(occurred_at) AS day, category, count() AS events FROM {table}"
        " WHERE occurred_at >= toDateTime64('{end}', 6, 'UTC') - INTERVAL 1 YEAR"
        " GROUP BY day, category ORDER BY day, category",
        "SELECT (occurred_at AT TIME ZONE 'UTC')::date AS day, category, count(*) AS events FROM events"
        " WHERE occurred_at >= timestamptz '{end}' - interval '1 year'"
        " GROUP BY day, category ORDER BY day, category",
    ),
    "top 20 actors per workspace (30 d)": (
        "SELECT workspace_id, actor_display, count() AS events FROM {table}"
        " WHERE occurred_at >= toDateTime64('{end}', 6, 'UTC') - INTERVAL 30 DAY"
        " GROUP BY workspace_id, actor_display ORDER BY workspace_id, events DESC, actor_display"
        " LIMIT 20 BY workspace_id",
        "SELECT workspace_id, actor_display, events FROM (SELECT workspace_id, actor_display, count(*) AS events,"
        " row_number() OVER (PARTITION BY workspace_id ORDER BY count(*) DESC, actor_display) AS rank"
        " FROM events WHERE occurred_at >= timestamptz '{end}' - interval '30 days'"
        " GROUP BY workspace_id, actor_display) AS ranked WHERE rank <= 20"
        " ORDER BY workspace_id, events DESC, actor_display",
    ),
    "distinct active actors per workspace per month (1 y)": (
        "SELECT workspace_id, toStartOfMonth(occurred_at) AS month, uniqExact(actor_id) AS actors FROM {table}"
        " WHERE occurred_at >= toDateTime64('{end}', 6, 'UTC') - INTERVAL 1 YEAR"
        " GROUP BY workspace_id, month ORDER BY workspace_id, month",
        "SELECT workspace_id, date_trunc('month', occurred_at AT TIME ZONE 'UTC') AS month,"
        " count(DISTINCT actor_id) AS actors FROM events"
        " WHERE occurred_at >= timestamptz '{end}' - interval '1 year'"
        " GROUP BY workspace_id, month ORDER BY workspace_id, month",
    ),
}
