"""Migration 0010 copies the events into a table with 2,048-row granules and swaps the two.

What it must never do: lose or change an event, lose one written while it copies, drop the
table's definition (codecs, skip indexes, TTL), cut the id table's view off the events, or leave
the database half-migrated when it stops at any statement.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from clickhouse.client import get_client, open_client
from clickhouse.errors import classify
from clickhouse.events import insert_rows, record_to_row
from clickhouse.migrations import apply_retention, current_retention_days, load_migrations, migrate
from producers.synthetic import EventGenerator
from tests.integration.test_migration_0009_daily_actions import _apply_up_to

pytestmark = pytest.mark.clickhouse

TABLE = "events"
MIGRATION = "0010_resize_event_granules"


@pytest.fixture
def database(clickhouse_dsn: str) -> Iterator[str]:
    """A database migrated up to 0009, as every deployment was before 0010."""
    name = f"audit_m10_{uuid.uuid4().hex[:8]}"
    client = get_client(clickhouse_dsn)
    _apply_up_to(client, name, TABLE, 9)
    yield name
    client.command(f"DROP DATABASE IF EXISTS {name} SYNC")


def _rows(seed: int, count: int, start: datetime, end: datetime, workspaces: int = 3) -> list[tuple[Any, ...]]:
    generator = EventGenerator(seed=seed)
    ws = [f"ws_{seed}_{i}" for i in range(workspaces)]
    return [record_to_row(e.to_record(), 1) for e in generator.history(ws, count, start, end)]


def _definition(client, database: str) -> dict[str, Any]:
    """Everything about the events table that the migration must keep (its granules aside)."""
    params = {"db": database, "t": TABLE}
    columns = client.query(
        "SELECT name, type, default_kind, default_expression, compression_codec FROM system.columns"
        " WHERE database = {db:String} AND table = {t:String} ORDER BY position", parameters=params).result_rows
    indexes = client.query(
        "SELECT name, type_full, expr, granularity FROM system.data_skipping_indices"
        " WHERE database = {db:String} AND table = {t:String} ORDER BY name", parameters=params).result_rows
    table = client.query(
        "SELECT engine, sorting_key, partition_key, replaceRegexpOne(engine_full, 'index_granularity = \\\\d+, ', '')"
        " FROM system.tables WHERE database = {db:String} AND name = {t:String}", parameters=params).result_rows
    return {"columns": columns, "indexes": indexes, "table": table}


def _granularity(client, database: str) -> int:
    create = str(client.query(f"SHOW CREATE TABLE {database}.{TABLE}").result_rows[0][0])
    return int(create.split("index_granularity = ")[1].split(",")[0].split("\n")[0])


def _stored(client, database: str) -> list[tuple[Any, ...]]:
    """Every stored event once (copies collapsed), every column, in id order."""
    return [tuple(r) for r in client.query(
        f"SELECT * FROM {database}.{TABLE} FINAL ORDER BY id").result_rows]


def _leftovers(client, database: str) -> list[str]:
    return [str(r[0]) for r in client.query(
        "SELECT name FROM system.tables WHERE database = {db:String} AND name LIKE '%regranulat%'",
        parameters={"db": database}).result_rows]


def test_every_event_and_the_table_definition_survive_the_copy(clickhouse_dsn: str, database: str):
    client = get_client(clickhouse_dsn)
    now = datetime.now(UTC)
    # Eleven years of months: more partitions than one INSERT may write by default (100).
    rows = _rows(1, 6000, now - timedelta(days=11 * 366), now)  # oldest first: 500 rows span ~11 months
    for n in range(0, len(rows), 500):
        insert_rows(client, f"{database}.{TABLE}", rows[n:n + 500], f"m10-a-{n}")
    apply_retention(client, database, TABLE, 30 * 365)
    before, definition = _stored(client, database), _definition(client, database)
    months = client.query(f"SELECT uniqExact(toYYYYMM(occurred_at)) FROM {database}.{TABLE}").result_rows[0][0]
    assert months > 100 and len(before) == 6000 and _granularity(client, database) == 8192

    assert migrate(client, database, TABLE, retention_days=30 * 365) == [MIGRATION]

    assert _granularity(client, database) == 2048
    assert _stored(client, database) == before
    assert _definition(client, database) == definition  # codecs, skip indexes, TTL, sort key, settings
    assert current_retention_days(client, database, TABLE) == 30 * 365
    assert _leftovers(client, database) == []
    # The id table's view follows the table's name: an event stored afterwards records its id.
    late = _rows(2, 5, now - timedelta(hours=1), now)
    insert_rows(client, f"{database}.{TABLE}", late, "m10-late")
    ids = {str(r[0]) for r in client.query(f"SELECT id FROM {database}.{TABLE}_ids").result_rows}
    assert {str(r[0]) for r in late} <= ids and len(ids) == 6005
    assert migrate(client, database, TABLE) == []


def test_events_written_while_the_rows_are_copied_are_all_kept(clickhouse_dsn: str, database: str):
    client = get_client(clickhouse_dsn)
    now = datetime.now(UTC)
    insert_rows(client, f"{database}.{TABLE}", _rows(3, 150_000, now - timedelta(days=900), now, 20), "m10-base")
    written: list[tuple[float, set[str]]] = []
    retried: list[str] = []
    stop = threading.Event()
    failures: list[BaseException] = []

    def write() -> None:
        """Inserts as the consumer's store does: a transient failure is retried with the same batch and
        token on the same handle (an insert still running into the old table when it is dropped ends
        with "Storage has been shutdown", ABORTED), anything else is a failure of the test."""
        writer, checker, n = open_client(clickhouse_dsn), open_client(clickhouse_dsn), 0
        try:
            while not stop.is_set():
                batch = _rows(100 + n, 200, now - timedelta(days=900), now + timedelta(minutes=5), 20)
                for attempt in range(5):
                    try:
                        insert_rows(writer, f"{database}.{TABLE}", batch, f"m10-live-{n}")
                        break
                    except Exception as exc:
                        if classify(exc) != "transient" or attempt == 4:
                            raise
                        retried.append(str(exc))
                        # The consumer's retry skips ids it finds recorded: a failed insert must not have
                        # recorded an id whose event the table does not hold.
                        ids = ",".join(f"'{r[0]}'" for r in batch)
                        recorded = {str(r[0]) for r in checker.query(
                            f"SELECT id FROM {database}.{TABLE}_ids WHERE id IN ({ids})").result_rows}
                        held = {str(r[0]) for r in checker.query(
                            f"SELECT id FROM {database}.{TABLE} WHERE id IN ({ids})").result_rows}
                        assert recorded <= held, f"{len(recorded - held)} ids recorded without their event"
                written.append((time.monotonic(), {str(r[0]) for r in batch}))
                n += 1
        except BaseException as exc:  # reported by the test below
            failures.append(exc)

    thread = threading.Thread(target=write)
    thread.start()
    try:
        while not written:
            time.sleep(0.01)
        started = time.monotonic()
        assert migrate(client, database, TABLE) == [MIGRATION]
        finished = time.monotonic()
        count_at_finish = len(written)
        while len(written) < count_at_finish + 3:  # writes after the swap reach the new table too
            assert thread.is_alive(), failures
            time.sleep(0.01)
    finally:
        stop.set()
        thread.join()
    assert not failures, failures
    assert all("ABORTED" in r for r in retried), retried  # the only transient failure the swap may cause
    print(f"batches written: {len(written)}, retried after a transient failure: {len(retried)}")
    during = [ids for at, ids in written if started < at < finished]
    assert during, "no batch was written while the migration ran; the test proves nothing"
    stored = {str(r[0]) for r in client.query(f"SELECT id FROM {database}.{TABLE}").result_rows}
    missing = set().union(*(ids for _, ids in written)) - stored
    assert not missing, f"{len(missing)} events written during the migration are not in the table"
    assert _granularity(client, database) == 2048
    total = client.query(f"SELECT count() FROM {database}.{TABLE} FINAL").result_rows[0][0]
    assert total == 150_000 + 200 * len(written)


def _statements() -> list[str]:
    (migration,) = [m for m in load_migrations() if m.version == 10]
    return migration.statements("{database}", TABLE)


@pytest.mark.parametrize("stopped_after", range(1, len(_statements())))
def test_a_migration_stopped_after_any_statement_completes_when_run_again(
        clickhouse_dsn: str, database: str, stopped_after: int):
    client = get_client(clickhouse_dsn)
    now = datetime.now(UTC)
    insert_rows(client, f"{database}.{TABLE}", _rows(4, 3000, now - timedelta(days=400), now), "m10-b")
    before = _stored(client, database)
    for statement in _statements()[:stopped_after]:  # a crash after this statement
        client.command(statement.replace("{database}", database))

    assert migrate(client, database, TABLE) == [MIGRATION]

    assert _stored(client, database) == before
    assert _granularity(client, database) == 2048
    assert _leftovers(client, database) == []


def test_a_copy_missing_events_ingested_before_the_view_is_not_swapped(clickhouse_dsn: str, database: str):
    client = get_client(clickhouse_dsn)
    now = datetime.now(UTC)
    insert_rows(client, f"{database}.{TABLE}", _rows(5, 3000, now - timedelta(days=400), now), "m10-c")
    time.sleep(1.1)  # the view's time has whole seconds: these rows are ingested in a second before it
    before = _stored(client, database)
    statements = _statements()
    check = next(i for i, s in enumerate(statements) if "throwIf" in s)
    for statement in statements[:check]:
        client.command(statement.replace("{database}", database))
    # What an insert that began before the view and ended after both copies would leave: events in
    # the original that neither the copy, the catch-up nor the view brought over.
    client.command(f"ALTER TABLE {database}.{TABLE}_regranulated DELETE WHERE cityHash64(id) % 10 = 0",
                   settings={"mutations_sync": 2})

    with pytest.raises(Exception, match=r"missing from it\. Nothing was swapped: run migrate again"):
        client.command(statements[check].replace("{database}", database))

    client = open_client(clickhouse_dsn)  # a chDB handle may pass a failed query's leftovers on
    assert _granularity(client, database) == 8192  # the original, untouched
    assert _stored(client, database) == before
    assert migrate(client, database, TABLE) == [MIGRATION]  # run again: starts over, completes
    assert _stored(client, database) == before
