"""The data teams' example SQL (clickhouse/data_teams/, docs/data-teams.md) answers correctly.

Realistic events from the synthetic generator go into a fresh table through
the consumer's own row mapping and insert, twice (as a re-formed batch
after a crash would), then each example query runs under the read-only
profile's `readonly = 2` and is compared with the answer computed here in
Python from the events themselves.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from clickhouse.client import get_client
from clickhouse.events import insert_rows, record_to_row
from clickhouse.summaries import refresh_summaries
from config.settings import Settings
from producers.synthetic import EventGenerator
from schemas.event import Actor, AuditEvent

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "clickhouse/data_teams"
WS, OTHER_WS = "ws_data", "ws_other"
NOW = datetime.now(UTC)


def _example(name: str, settings: Settings) -> str:
    sql = (EXAMPLES / f"{name}.sql").read_text()
    assert "FROM audit.events" in sql
    return sql.replace("FROM audit.events", f"FROM {settings.events_table}") + "\nSETTINGS readonly = 2"


@pytest.fixture
def events(clickhouse_settings: Settings) -> list[AuditEvent]:
    generator = EventGenerator(seed=11)
    start = NOW - timedelta(days=200)
    made = list(generator.history([WS, OTHER_WS], 3000, start, NOW))
    span = (NOW - start).total_seconds()
    for i, action in enumerate(["INTEGRATION_SCOPES_CHANGED", "INTEGRATION_CONNECTED", "INTEGRATION_DISCONNECTED",
                                "API_TOKEN_CREATED", "MEMBER_ROLE_CHANGED"] * 40):
        at = start + timedelta(seconds=generator.rng.random() * span)
        made.append(generator.event(WS if i % 4 else OTHER_WS, at, action=action))
    rows = [record_to_row(e.to_record(), 1) for e in made]
    client = get_client(clickhouse_settings.clickhouse.dsn)
    insert_rows(client, clickhouse_settings.events_table, rows, "data-team-1")
    # Every row again, under another token (a batch re-formed after a crash): not-yet-merged
    # copies that the queries must not count twice.
    insert_rows(client, clickhouse_settings.events_table, rows, "data-team-2")
    return made


def _naive(at: datetime) -> datetime:
    return at.astimezone(UTC).replace(tzinfo=None)


@pytest.mark.clickhouse
def test_who_changed_this_integration_lists_every_change_once_newest_first(clickhouse_settings, events):
    integration = next(e.target.id for e in events if e.workspace_id == WS and e.target.kind == "integration")
    expected = sorted(
        (e for e in events if e.workspace_id == WS and e.target.kind == "integration" and e.target.id == integration),
        key=lambda e: (e.occurred_at, e.id), reverse=True,
    )
    result = get_client(clickhouse_settings.clickhouse.dsn).query(
        _example("who_changed_integration", clickhouse_settings),
        parameters={"workspace": WS, "integration_id": integration},
    )
    got = [dict(zip(result.column_names, row, strict=True)) for row in result.result_rows]
    assert len(expected) >= 5
    assert [(_naive(e.occurred_at), e.action, e.actor.display, e.before, e.after) for e in expected] == [
        (g["occurred_at"].replace(tzinfo=None), g["action"], g["actor"],
         json.loads(g["before"]), json.loads(g["after"]))
        for g in got
    ]


def _previous_quarter(now: datetime) -> tuple[datetime, datetime]:
    first_month = 3 * ((now.month - 1) // 3) + 1
    this_quarter = datetime(now.year, first_month, 1, tzinfo=UTC)
    previous = datetime(now.year - 1, 10, 1, tzinfo=UTC) if first_month == 1 else \
        datetime(now.year, first_month - 3, 1, tzinfo=UTC)
    return previous, this_quarter


@pytest.mark.clickhouse
def test_tokens_minted_last_quarter_by_actor(clickhouse_settings, events):
    start, end = _previous_quarter(NOW)
    minted: dict[tuple[str, str], set[str]] = defaultdict(set)
    names: dict[tuple[str, str], set[str]] = defaultdict(set)
    for e in events:
        if e.workspace_id == WS and e.action == "API_TOKEN_CREATED" and start <= e.occurred_at < end:
            minted[(e.actor.kind, e.actor.display)].add(str(e.id))
            names[(e.actor.kind, e.actor.display)].add(e.target.display)
    expected = sorted(
        ((kind, actor, len(ids), sorted(names[(kind, actor)])) for (kind, actor), ids in minted.items()),
        key=lambda r: (-r[2], r[1]),
    )
    rows = get_client(clickhouse_settings.clickhouse.dsn).query(
        _example("tokens_minted_last_quarter", clickhouse_settings), parameters={"workspace": WS}
    ).result_rows
    assert sum(r[2] for r in expected) >= 5
    assert [(*r[:3], list(r[3])) for r in rows] == expected


@pytest.mark.clickhouse
def test_role_changes_per_week_split_by_old_and_new_role(clickhouse_settings, events):
    since = NOW - timedelta(days=120)
    counts: dict[tuple[date, str, str], set[str]] = defaultdict(set)
    for e in events:
        if e.workspace_id == WS and e.action == "MEMBER_ROLE_CHANGED" and e.occurred_at >= since:
            day = e.occurred_at.astimezone(UTC).date()
            before, after = e.before or {}, e.after or {}
            key = (day - timedelta(days=day.weekday()), str(before.get("role") or ""), str(after.get("role") or ""))
            counts[key].add(str(e.id))
    expected = [(*key, len(ids)) for key, ids in sorted(counts.items())]
    rows = get_client(clickhouse_settings.clickhouse.dsn).query(
        _example("role_changes_per_week", clickhouse_settings),
        parameters={"workspace": WS, "since": since},
    ).result_rows
    assert sum(r[3] for r in expected) >= 10
    assert [tuple(r) for r in rows] == expected


def test_documentation_shows_each_example_exactly_as_tested():
    doc = (ROOT / "docs/data-teams.md").read_text()
    for path in sorted(EXAMPLES.glob("*.sql")):
        assert path.read_text().strip() in doc, f"docs/data-teams.md does not show {path.name} as it is"


# The questions across workspaces read the daily summaries (create_daily_summaries): each is checked against an
# answer computed here from the events, after a refresh. The fixture stored every event twice (unmerged
# copies): the summaries must count each event once.
FROM_DAY = (NOW - timedelta(days=150)).date()


@pytest.fixture
def summarised(clickhouse_settings: Settings, events: list[AuditEvent]) -> list[AuditEvent]:
    ch = clickhouse_settings.clickhouse
    refresh_summaries(get_client(ch.dsn), ch.database, ch.table)
    return events


def _run(name: str, settings: Settings) -> list[tuple[Any, ...]]:
    sql = (EXAMPLES / f"{name}.sql").read_text().replace("audit.events", settings.events_table)
    rows = get_client(settings.clickhouse.dsn).query(sql + "\nSETTINGS readonly = 2",
                                                     parameters={"from_day": FROM_DAY}).result_rows
    return [tuple(r) for r in rows]


def _since(events: list[AuditEvent]) -> list[AuditEvent]:
    return [e for e in events if e.occurred_at.astimezone(UTC).date() >= FROM_DAY]


def _day(e: AuditEvent) -> date:
    return e.occurred_at.astimezone(UTC).date()


@pytest.mark.clickhouse
def test_role_changes_per_week_across_workspaces_from_the_summary(clickhouse_settings, summarised):
    ids: dict[tuple[date, str], set[str]] = defaultdict(set)
    for e in _since(summarised):
        if e.action == "MEMBER_ROLE_CHANGED":
            ids[(_day(e) - timedelta(days=_day(e).weekday()), str((e.after or {}).get("role") or ""))].add(str(e.id))
    expected = [(*key, len(v)) for key, v in sorted(ids.items())]
    assert sum(r[2] for r in expected) >= 10
    assert _run("role_changes_per_week_all_workspaces", clickhouse_settings) == expected


@pytest.mark.clickhouse
def test_tokens_minted_per_actor_across_workspaces_from_the_summary(clickhouse_settings, summarised):
    ids: dict[tuple[str, str], set[str]] = defaultdict(set)
    for e in _since(summarised):
        if e.action == "API_TOKEN_CREATED":
            ids[(e.workspace_id, e.actor.display)].add(str(e.id))
    expected = sorted(((ws, actor, len(v)) for (ws, actor), v in ids.items()), key=lambda r: (-r[2], r[0], r[1]))
    assert {r[0] for r in expected} == {WS, OTHER_WS}
    assert _run("tokens_minted_per_actor", clickhouse_settings) == expected


@pytest.mark.clickhouse
def test_events_per_day_and_category_from_the_summary(clickhouse_settings, summarised):
    ids: dict[tuple[date, str], set[str]] = defaultdict(set)
    for e in _since(summarised):
        ids[(_day(e), e.category)].add(str(e.id))
    expected = [(*key, len(v)) for key, v in sorted(ids.items())]
    assert len(expected) >= 100
    assert _run("events_per_day_by_category", clickhouse_settings) == expected


@pytest.mark.clickhouse
def test_top_actors_of_every_workspace_from_the_summary(clickhouse_settings, summarised):
    # 25 more actors, one event each, in one workspace: more than the 20 the query keeps.
    generator = EventGenerator(seed=13)
    extra = [replace(generator.event(OTHER_WS, NOW - timedelta(days=1), action="API_TOKEN_CREATED"),
                     actor=Actor("user", f"usr_extra{i:02d}", f"extra{i:02d}@example.com")) for i in range(25)]
    client, ch = get_client(clickhouse_settings.clickhouse.dsn), clickhouse_settings.clickhouse
    insert_rows(client, clickhouse_settings.events_table, [record_to_row(e.to_record(), 1) for e in extra], "top-25")
    refresh_summaries(client, ch.database, ch.table)
    ids: dict[tuple[str, str], set[str]] = defaultdict(set)
    for e in _since([*summarised, *extra]):
        ids[(e.workspace_id, e.actor.display)].add(str(e.id))
    ranked = sorted(((ws, actor, len(v)) for (ws, actor), v in ids.items()), key=lambda r: (r[0], -r[2], r[1]))
    expected = [r for r in ranked if sum(1 for o in ranked if o[0] == r[0] and (-o[2], o[1]) < (-r[2], r[1])) < 20]
    assert len(ranked) > len(expected) and {r[0] for r in expected} == {WS, OTHER_WS}  # the limit cuts
    assert _run("top_actors_per_workspace", clickhouse_settings) == expected


@pytest.mark.clickhouse
def test_active_actors_per_month_from_the_summary(clickhouse_settings, summarised):
    actors: dict[tuple[str, date], set[str]] = defaultdict(set)
    for e in _since(summarised):
        actors[(e.workspace_id, _day(e).replace(day=1))].add(e.actor.id)
    expected = [(*key, len(v)) for key, v in sorted(actors.items())]
    assert len(expected) >= 8
    assert _run("active_actors_per_month", clickhouse_settings) == expected


@pytest.mark.clickhouse
def test_the_summaries_lag_until_refreshed_and_count_a_stored_copy_once(clickhouse_settings, summarised):
    client = get_client(clickhouse_settings.clickhouse.dsn)
    table = clickhouse_settings.events_table
    before = _run("events_per_day_by_category", clickhouse_settings)
    # Stored rows: every event twice (two tokens), copies not merged yet; the summary counts events.
    rows, ids = client.query(f"SELECT count(), uniqExact(id) FROM {table}").result_rows[0]
    assert rows == 2 * ids
    assert sum(r[2] for r in before) == len(_since(summarised))
    # A new event is not in the summary until the next refresh, then it is, once.
    extra = EventGenerator(seed=12).event(WS, NOW - timedelta(minutes=5), action="API_TOKEN_CREATED")
    row = record_to_row(extra.to_record(), 1)
    insert_rows(client, table, [row], "data-team-extra")
    insert_rows(client, table, [row], "data-team-extra-again")
    assert _run("events_per_day_by_category", clickhouse_settings) == before
    ch = clickhouse_settings.clickhouse
    refresh_summaries(client, ch.database, ch.table)
    after = dict(((d, c), n) for d, c, n in _run("events_per_day_by_category", clickhouse_settings))
    key = (_day(extra), extra.category)
    assert after[key] == dict(((d, c), n) for d, c, n in before).get(key, 0) + 1
    assert sum(after.values()) == sum(r[2] for r in before) + 1
