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
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from clickhouse.client import get_client
from clickhouse.events import insert_rows, record_to_row
from config.settings import Settings
from producers.synthetic import EventGenerator
from schemas.event import AuditEvent

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
