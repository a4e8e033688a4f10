"""Grafana's ClickHouse data source, protocol "HTTP", against the SQL gateway on the real embedded engine.

The plugin (grafana/clickhouse-datasource, a Go backend plugin) talks to ClickHouse through
clickhouse-go v2. ``tests/grafana/`` is a small Go program that connects exactly as the plugin's
``pkg/plugin/driver.go`` does with "HTTP" selected (same clickhouse-go version, options,
compression, pool and health check), expands the plugin's macros and reads rows the way Grafana
does; this test builds it with ``go build`` and drives it against the gateway: the health check,
the query builder's metadata queries, the documented examples (same typed answers as the engine
in process), a time-series panel, a wrong password and a refused write.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import settings as hyp_settings
from hypothesis import strategies as st

from clickhouse.client import get_client
from clickhouse.http_gateway import SqlGateway
from clickhouse.native_blocks import BLOCK_INFO, NativeUpgrade
from config.settings import Settings
from tests.integration.test_data_team_sql import NOW, WS, events  # noqa: F401 - the stored events fixture
from tests.integration.test_sql_gateway import (  # noqa: F401 - the gateway fixture
    PASSWORD,
    USER,
    _documented_queries,
    _parameters,
    gateway,
)

pytestmark = pytest.mark.clickhouse

PROBE_MODULE = Path(__file__).resolve().parents[1] / "grafana"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _go() -> str | None:
    return shutil.which("go") or next((p for p in ("/usr/local/go/bin/go", "/usr/lib/go/bin/go") if Path(p).exists()),
                                      None)


@pytest.fixture(scope="session")
def probe(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The Go program, built once per session (modules through the Go proxy, Go's own build cache)."""
    go = _go()
    if go is None:
        pytest.skip("Go is not installed: the Grafana data source check needs `go` (.ci/run installs golang-go)")
    binary = tmp_path_factory.mktemp("grafana") / "grafana-probe"
    built = subprocess.run([go, "build", "-mod=readonly", "-buildvcs=false", "-o", str(binary), "."], cwd=PROBE_MODULE,
                           capture_output=True, text=True, timeout=900, env={**os.environ, "CGO_ENABLED": "0"})
    assert built.returncode == 0, built.stderr
    return binary


def _run(probe: Path, server: SqlGateway, queries: list[dict[str, Any]], *, password: str = PASSWORD,
         database: str = "", since: datetime | None = None, until: datetime | None = None,
         interval: timedelta = timedelta(days=1), settings: dict[str, str] | None = None) -> dict[str, Any]:
    host, port = server.address
    until = until or NOW
    since = since or until - timedelta(days=30)
    request = {"addr": f"{host}:{port}", "user": USER, "password": password, "database": database,
               "from_unix_ms": int(since.timestamp() * 1000), "to_unix_ms": int(until.timestamp() * 1000),
               "interval_seconds": int(interval.total_seconds()), "queries": queries, "settings": settings or {}}
    done = subprocess.run([str(probe)], input=json.dumps(request), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    answer: dict[str, Any] = json.loads(done.stdout)
    return answer


def _one(probe: Path, server: SqlGateway, sql: str, params: dict[str, str] | None = None,
         **kwargs: Any) -> dict[str, Any]:
    answer = _run(probe, server, [{"name": "q", "sql": sql, "params": params or {}}], **kwargs)
    assert answer["health"]["ok"], answer["health"]
    result: dict[str, Any] = answer["results"][0]
    return result


def _as_go_prints(value: Any, server_zone: str) -> Any:
    """A value of the in-process client as the Go program prints it.

    Times are microseconds since the epoch with their zone: a ``DateTime64(6, 'UTC')`` in UTC, a
    ``Date`` (which has no zone) at midnight in the server's zone, as clickhouse-go reads both.
    """
    if isinstance(value, datetime):
        at = value if value.tzinfo else value.replace(tzinfo=UTC)
        return {"unix_us": (at - EPOCH) // timedelta(microseconds=1), "zone": "UTC"}
    if isinstance(value, date):
        return {"unix_us": (value - date(1970, 1, 1)).days * 86_400_000_000, "zone": server_zone}
    if isinstance(value, (list, tuple)):
        return [_as_go_prints(v, server_zone) for v in value]
    return value


def _query_parameters(sql: str, stored: list[Any]) -> dict[str, str]:
    """The documented examples' parameters as Grafana passes them: text, for the server to parse as the type."""
    def text(value: Any) -> str:
        if isinstance(value, datetime):
            return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
        return str(value)
    return {name: text(value) for name, value in _parameters(sql, stored).items()}


def test_the_plugins_health_check_passes_and_it_reads_the_server_hello(probe, gateway):  # noqa: F811
    answer = _run(probe, gateway, [])
    assert answer["health"] == {"ok": True, "error": None, "downstream": False,
                                "server_version": gateway.engine.version}


def test_the_query_builders_metadata_queries_list_the_audit_database_tables_and_columns(
        probe, gateway, clickhouse_settings: Settings):  # noqa: F811
    db = clickhouse_settings.clickhouse.database
    databases = _one(probe, gateway, "SHOW DATABASES")
    assert databases["error"] is None, databases["error"]
    assert [db] in databases["rows"]
    tables = _one(probe, gateway, f'SHOW TABLES FROM "{db}"')
    assert tables["error"] is None, tables["error"]
    assert {"events", "events_daily_actions", "events_daily_actors"} <= {r[0] for r in tables["rows"]}
    # The column list of the table picker and of the SQL editor's completion.
    in_process = get_client(clickhouse_settings.clickhouse.dsn)
    expected = [(name, kind) for name, kind, *_ in in_process.query(f"DESC TABLE {db}.events").result_rows]
    described = _one(probe, gateway, f'DESC TABLE "{db}"."events"')
    assert described["error"] is None, described["error"]
    assert [(r[0], r[1]) for r in described["rows"]] == expected
    assert ("occurred_at", "DateTime64(6, 'UTC')") in expected and ("action", "LowCardinality(String)") in expected
    columns = _one(probe, gateway, f"SELECT name, type, table FROM system.columns WHERE database = '{db}' "
                                   f"AND table = 'events'")
    assert columns["error"] is None, columns["error"]
    assert sorted((r[0], r[1]) for r in columns["rows"]) == sorted(expected)
    # With the default database set in the data source, the bare table name works too.
    scoped = _one(probe, gateway, 'DESC TABLE "events"', database=db)
    assert [(r[0], r[1]) for r in scoped["rows"]] == expected


def test_documented_examples_give_the_in_process_answers_with_their_types(
        probe, gateway, clickhouse_settings: Settings, events):  # noqa: F811
    in_process = get_client(clickhouse_settings.clickhouse.dsn)
    queries = _documented_queries(clickhouse_settings)
    answer = _run(probe, gateway, [{"name": name, "sql": sql, "params": _query_parameters(sql, events)}
                                   for name, sql in queries])
    seen_types: dict[str, set[str]] = {}
    zone = gateway.engine.timezone
    for (name, sql), got in zip(queries, answer["results"], strict=True):
        assert got["error"] is None, (name, got["error"])
        expected = in_process.query(sql, parameters=_parameters(sql, events))
        assert expected.result_rows, f"{name} found nothing: the comparison would prove little"
        assert got["columns"] == list(expected.column_names), name
        assert got["rows"] == [[_as_go_prints(v, zone) for v in row] for row in expected.result_rows], name
        for kind, go_type in zip(got["types"], got["go_types"], strict=True):
            seen_types.setdefault(kind, set()).add(go_type)
    # The types Grafana gets: UTC times, exact unsigned counts, arrays, LowCardinality as plain strings.
    assert seen_types["DateTime64(6, 'UTC')"] == {"time.Time"}
    assert seen_types["UInt64"] == {"uint64"}
    assert seen_types["Array(String)"] == {"[]string"}
    assert seen_types["LowCardinality(String)"] == {"string"}
    assert seen_types["Date"] == {"time.Time"}
    times = [(r["types"][i], v["zone"]) for r in answer["results"] for row in r["rows"] for i, v in enumerate(row)
             if isinstance(v, dict)]
    assert {z for kind, z in times if kind.startswith("DateTime64")} == {"UTC"}


def test_a_time_series_panel_query_with_the_plugins_macros(
        probe, gateway, clickhouse_settings: Settings, events):  # noqa: F811
    until = NOW.replace(microsecond=0)
    since = until - timedelta(days=60)
    sql = (f"SELECT $__timeInterval(occurred_at) AS time, uniqExact(id) AS events "
           f"FROM {clickhouse_settings.events_table} "
           f"WHERE workspace_id = {{workspace:String}} AND $__timeFilter(occurred_at) "
           f"GROUP BY time ORDER BY time")
    got = _one(probe, gateway, sql, {"workspace": WS}, since=since, until=until, interval=timedelta(hours=6))
    assert got["error"] is None, got["error"]
    assert "toStartOfInterval(toDateTime(occurred_at), INTERVAL 21600 second)" in got["sql"]
    assert f"occurred_at >= toDateTime({int(since.timestamp())})" in got["sql"]
    bucket = 6 * 3600
    expected = Counter(int(e.occurred_at.timestamp()) // bucket * bucket for e in events
                       if e.workspace_id == WS and since <= e.occurred_at.replace(microsecond=0) <= until)
    assert sum(expected.values()) > 20
    assert got["types"] == ["DateTime", "UInt64"] and got["go_types"] == ["time.Time", "uint64"]
    assert {r[0]["unix_us"] // 1_000_000: r[1] for r in got["rows"]} == dict(expected)


def test_a_wrong_password_fails_the_health_check_with_an_authentication_error(probe, gateway):  # noqa: F811
    answer = _run(probe, gateway, [], password="not-the-password")
    health = answer["health"]
    assert health["ok"] is False and health["downstream"] is True
    assert "Code: 516" in health["error"] and "Authentication failed" in health["error"]
    assert PASSWORD not in health["error"]


@pytest.mark.parametrize(("sql", "code", "says"), [
    ("INSERT INTO {table} (id) VALUES (generateUUIDv7())", 164, "not INSERT"),
    ("DROP TABLE {table}", 164, "not DROP"),
    ("SELECT * FROM file('/etc/passwd', 'LineAsString')", 497, "table function file()"),
    ("SELECT count() FROM {table} SETTINGS max_result_rows = 0", 164, "Cannot modify 'max_result_rows'"),
])
def test_a_refused_write_comes_back_as_a_clickhouse_exception(
        probe, gateway, clickhouse_settings: Settings, sql, code, says):  # noqa: F811
    got = _one(probe, gateway, sql.format(table=clickhouse_settings.events_table))
    assert got["error"] is not None and got["rows"] == []
    assert f"Code: {code}. DB::Exception: " in got["error"] and says in got["error"], got["error"]
    assert got["downstream"] is True  # Grafana shows it as the data source's error, not the plugin's


def test_an_error_after_the_first_blocks_reaches_grafana_as_the_servers_message(probe, gateway):  # noqa: F811
    got = _one(probe, gateway, "SELECT number FROM numbers(5000000) WHERE number % 100 = 0 "
                               "AND throwIf(number > 4000000, 'stop here') = 0")
    assert got["error"] is not None and "stop here" in got["error"], got
    assert got["downstream"] is True


TYPES_SQL = """
SELECT
    number AS n,
    toUInt64(18446744073709551615 - number) AS u64,
    toInt32(-number) AS i32,
    toDecimal64(number / 4, 2) AS dec,
    toDate32('2100-01-01') + number AS far_day,
    toDateTime64('2026-01-01 00:00:00.123456', 6, 'UTC') + toIntervalSecond(number) AS at,
    toFixedString(concat('f', toString(number)), 3) AS fixed,
    CAST(if(number % 2 = 0, 'a', 'b,c') AS Enum8('a' = 1, 'b,c' = 2)) AS kind,
    toLowCardinality(toString(number % 3)) AS low,
    toLowCardinality(if(number % 2 = 0, NULL, toString(number))) AS low_null,
    if(number % 2 = 0, NULL, toString(number)) AS maybe,
    range(number % 4) AS arr,
    CAST(arrayMap(x -> toString(x), range(number % 3)) AS Array(LowCardinality(String))) AS arr_low,
    arrayMap(x -> if(x = 1, NULL, x), range(number % 3)) AS arr_null,
    map('k', number, 'l', number * 2) AS m,
    CAST((number, toString(number)) AS Tuple(id UInt64, name String)) AS named,
    toUUID('00000000-0000-0000-0000-00000000000' || toString(number % 10)) AS uuid,
    toIPv6('::1') AS ip
FROM numbers(5)
"""


def test_column_types_a_dashboard_may_select_arrive_with_their_values(probe, gateway):  # noqa: F811
    got = _one(probe, gateway, TYPES_SQL)
    assert got["error"] is None, got["error"]
    assert len(got["rows"]) == 5
    for n, row in enumerate(got["rows"]):
        value = dict(zip(got["columns"], row, strict=True))
        assert value["n"] == n and value["u64"] == 2**64 - 1 - n and value["i32"] == -n
        assert float(value["dec"]) == n / 4
        assert value["far_day"]["unix_us"] == ((date(2100, 1, 1) - date(1970, 1, 1)).days + n) * 86_400_000_000
        at = datetime(2026, 1, 1, 0, 0, n, 123456, tzinfo=UTC)
        assert value["at"] == {"unix_us": (at - EPOCH) // timedelta(microseconds=1), "zone": "UTC"}
        assert value["fixed"] == f"f{n}\0"[:3] and value["kind"] == ("a" if n % 2 == 0 else "b,c")
        assert value["low"] == str(n % 3) and value["low_null"] == (None if n % 2 == 0 else str(n))
        assert value["maybe"] == (None if n % 2 == 0 else str(n))
        assert value["arr"] == list(range(n % 4)) and value["arr_low"] == [str(x) for x in range(n % 3)]
        assert value["arr_null"] == [None if x == 1 else x for x in range(n % 3)]
        assert value["m"] == {"k": n, "l": 2 * n} and value["named"] == {"id": n, "name": str(n)}
        assert value["uuid"] == f"00000000-0000-0000-0000-00000000000{n}" and value["ip"] == "::1"
    types = dict(zip(got["columns"], got["types"], strict=True))
    assert types["low_null"] == "LowCardinality(Nullable(String))"
    assert types["arr_low"] == "Array(LowCardinality(String))"


def test_a_large_result_streams_to_grafana_block_by_block(probe, gateway):  # noqa: F811
    got = _one(probe, gateway, "SELECT number, toLowCardinality(toString(number % 7)) AS low, [number, number + 1] "
                               "AS pair FROM numbers(90000)")
    assert got["error"] is None, got["error"]
    assert got["rows"] == [[n, str(n % 7), [n, n + 1]] for n in range(90000)]


def test_the_data_sources_row_limit_applies_and_other_custom_settings_are_refused(probe, gateway):  # noqa: F811
    # "Row limit" sends the `limit` setting with every query; the engine accepts it under readonly = 1.
    limited = _run(probe, gateway, [{"name": "q", "sql": "SELECT number FROM numbers(10)", "params": {}}],
                   settings={"limit": "3"})
    assert limited["health"]["ok"] and limited["results"][0]["rows"] == [[0], [1], [2]]
    # ... for that data source's queries only, not the next client's on the same engine handle.
    assert len(_one(probe, gateway, "SELECT number FROM numbers(10)")["rows"]) == 10
    # A custom setting that changes a limit the gateway set is refused, and Grafana says why.
    refused = _run(probe, gateway, [], settings={"max_threads": "16"})
    assert refused["health"]["ok"] is False and refused["health"]["downstream"] is True
    assert "Code: 164" in refused["health"]["error"] and "Cannot modify 'max_threads'" in refused["health"]["error"]


def test_the_engines_native_blocks_upgrade_the_same_in_any_chunking(gateway):  # noqa: F811
    def native(revision: int) -> bytes:
        got = httpx.post(gateway.url + "/", params={"default_format": "Native", "client_protocol_version": revision},
                         content=TYPES_SQL.encode(), auth=(USER, PASSWORD), timeout=30)
        assert got.status_code == 200, got.text
        return got.content

    engine_bytes, served = native(0), native(54460)
    assert served.startswith(BLOCK_INFO) and len(served) > len(engine_bytes)

    @hyp_settings(max_examples=100, deadline=None)
    @given(st.lists(st.integers(min_value=0, max_value=len(engine_bytes)), max_size=12))
    def chunked(cuts: list[int]) -> None:
        upgrade, pieces, last = NativeUpgrade(54460), [], 0
        for cut in [*sorted(cuts), len(engine_bytes)]:
            pieces.append(upgrade.feed(engine_bytes[last:cut]))
            last = cut
        upgrade.finish()
        assert b"".join(pieces) == served

    chunked()


def test_a_bad_client_protocol_version_is_a_400_naming_it(gateway):  # noqa: F811
    got = httpx.post(gateway.url + "/", params={"client_protocol_version": "new"}, content=b"SELECT 1",
                     auth=(USER, PASSWORD), timeout=30)
    assert (got.status_code, got.headers["X-ClickHouse-Exception-Code"]) == (400, "72")
    assert "client_protocol_version" in got.text


def test_a_json_column_is_refused_in_native_with_a_message_grafana_shows(probe, gateway):  # noqa: F811
    got = _one(probe, gateway, """SELECT '{"a": 1}'::JSON AS doc""")
    assert got["error"] is not None and got["downstream"] is True
    assert "column `doc`" in got["error"] and "toString" in got["error"], got["error"]
    fixed = _one(probe, gateway, """SELECT toString('{"a": 1}'::JSON) AS doc""")
    assert fixed["error"] is None and fixed["rows"] == [['{"a":1}']]
