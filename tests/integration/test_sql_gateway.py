"""Data teams' SQL over HTTP on the running embedded engine (clickhouse/http_gateway.py).

The gateway runs on a free port against the real engine of the test session,
with events stored in a fresh database. A standard ClickHouse client
(clickhouse-connect with an ``http://`` DSN) runs every documented example and
gets the in-process client's answer; curl-style requests (httpx) use the URL,
the body and the formats; every write, setting change and reach outside the
audit database is tried and refused; credentials and limits are enforced.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import clickhouse_connect
import httpx
import pytest
from clickhouse_connect.driver.exceptions import DatabaseError

from clickhouse.client import engine_connection_string, get_client
from clickhouse.http_gateway import GatewayCredentials, SqlGateway
from clickhouse.readonly_engine import EngineLimits, ReadOnlyEngine
from clickhouse.summaries import refresh_summaries
from config.settings import Settings
from tests.integration.test_data_team_sql import NOW, WS, events  # noqa: F401 - the stored events fixture

pytestmark = pytest.mark.clickhouse

ROOT = Path(__file__).resolve().parents[2]
USER, PASSWORD = "analyst", "gateway-test-password"


@pytest.fixture
def gateway(clickhouse_settings: Settings, events: list[Any]) -> Iterator[SqlGateway]:  # noqa: F811
    ch = clickhouse_settings.clickhouse
    refresh_summaries(get_client(ch.dsn), ch.database, ch.table)  # the examples across workspaces read them
    engine = ReadOnlyEngine(engine_connection_string(ch.dsn), ch.database,
                            EngineLimits(max_result_rows=100_000, max_execution_seconds=5), handles=2)
    server = SqlGateway(engine, GatewayCredentials(USER, PASSWORD), port=0)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _http_client(gateway: SqlGateway, password: str = PASSWORD) -> Any:
    host, port = gateway.address
    return clickhouse_connect.get_client(dsn=f"http://{USER}:{password}@{host}:{port}")


def _documented_queries(settings: Settings) -> list[tuple[str, str]]:
    """Every example query: the files in clickhouse/data_teams/ and every ```sql block of docs/data-teams.md."""
    found = {p.name: p.read_text() for p in sorted((ROOT / "clickhouse/data_teams").glob("*.sql"))}
    doc = (ROOT / "docs/data-teams.md").read_text()
    for i, block in enumerate(re.findall(r"```sql\n(.*?)```", doc, flags=re.S)):
        if block.strip() not in {q.strip() for q in found.values()}:
            found[f"docs block {i}"] = block
    return [(name, sql.replace("audit.events", settings.events_table)) for name, sql in found.items()]


def _parameters(sql: str, stored: list[Any]) -> dict[str, Any]:
    integration = next(e.target.id for e in stored if e.workspace_id == WS and e.target.kind == "integration")
    values = {"workspace": WS, "integration_id": integration, "since": NOW - timedelta(days=120),
              "from_day": (NOW - timedelta(days=120)).date()}
    return {name: values[name] for name in set(re.findall(r"\{(\w+):", sql))}


def test_documented_examples_answer_over_http_as_in_process(clickhouse_settings, gateway, events):  # noqa: F811
    in_process = get_client(clickhouse_settings.clickhouse.dsn)
    over_http = _http_client(gateway)
    assert over_http.server_version == gateway.engine.version
    queries = _documented_queries(clickhouse_settings)
    assert len(queries) >= 5
    for name, sql in queries:
        parameters = _parameters(sql, events)
        expected = in_process.query(sql, parameters=parameters)
        got = over_http.query(sql, parameters=parameters)
        assert got.column_names == expected.column_names, name
        assert got.result_rows == expected.result_rows, name
        assert expected.result_rows, f"{name} found nothing: the comparison would prove little"


def test_parameters_and_streams_through_clickhouse_connect(clickhouse_settings, gateway, events):  # noqa: F811
    client = _http_client(gateway)
    table = clickhouse_settings.events_table
    ids = client.query(f"SELECT toString(id) FROM {table} WHERE workspace_id = {{ws:String}} "
                       f"AND action IN {{actions:Array(String)}} ORDER BY id LIMIT 1 BY id",
                       parameters={"ws": WS, "actions": ["API_TOKEN_CREATED", "MEMBER_ROLE_CHANGED"]}).result_rows
    expected = {str(e.id) for e in events
                if e.workspace_id == WS and e.action in ("API_TOKEN_CREATED", "MEMBER_ROLE_CHANGED")}
    assert {r[0] for r in ids} == expected
    rows = 0
    with client.query_row_block_stream("SELECT number, toString(number) FROM numbers(90000)") as stream:
        for block in stream:
            rows += len(block)
    assert rows == 90_000
    # The database parameter (clickhouse-connect's database=) names the default database.
    host, port = gateway.address
    scoped = clickhouse_connect.get_client(host=host, port=port, username=USER, password=PASSWORD,
                                           database=clickhouse_settings.clickhouse.database)
    assert scoped.query("SELECT count() > 0 FROM events").result_rows == [(1,)]
    assert scoped.command("SELECT currentDatabase()") == clickhouse_settings.clickhouse.database


def _post(gateway: SqlGateway, sql: str | None = None, *, params: dict[str, str] | None = None,
          auth: tuple[str, str] | None = (USER, PASSWORD), headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.post(gateway.url + "/", params=params or {}, content=sql.encode() if sql else b"",
                      auth=auth, headers=headers or {}, timeout=30)


def test_curl_style_requests_url_body_formats_and_headers(clickhouse_settings, gateway, events):  # noqa: F811
    table = clickhouse_settings.events_table
    count = sum(1 for e in events if e.workspace_id == WS)
    sql = f"SELECT uniqExact(id) AS n FROM {table} WHERE workspace_id = {{ws:String}}"
    # Query in the URL (GET), with a parameter and a FORMAT clause.
    got = httpx.get(gateway.url + "/", params={"query": sql + " FORMAT JSONEachRow", "param_ws": WS},
                    auth=(USER, PASSWORD))
    assert got.status_code == 200 and got.json() == {"n": count}
    assert got.headers["X-ClickHouse-Format"] == "JSONEachRow"
    assert got.headers["X-ClickHouse-Timezone"] and got.headers["X-ClickHouse-Server-Display-Name"]
    assert '"elapsed_ns"' in got.headers["X-ClickHouse-Summary"]
    # Query in the body, default format TabSeparated, our query id echoed.
    got = _post(gateway, sql, params={"param_ws": WS, "query_id": "q-123"})
    assert (got.status_code, got.text, got.headers["X-ClickHouse-Query-Id"]) == (200, f"{count}\n", "q-123")
    assert got.headers["X-ClickHouse-Format"] == "TabSeparated"
    # Split between the URL and the body; default_format; credentials in ClickHouse's headers.
    got = _post(gateway, f"FROM {table} WHERE workspace_id = {{ws:String}}",
                params={"query": "SELECT uniqExact(id), 'a,b'", "param_ws": WS, "default_format": "CSV"},
                auth=None, headers={"X-ClickHouse-User": USER, "X-ClickHouse-Key": PASSWORD})
    assert (got.status_code, got.text) == (200, f'{count},"a,b"\n')
    assert got.headers["X-ClickHouse-Format"] == "CSV"
    # Compressed as it streams, when asked.
    got = _post(gateway, "SELECT number FROM numbers(50000) FORMAT TabSeparated",
                headers={"Accept-Encoding": "gzip"}, params={"user": USER, "password": PASSWORD}, auth=None)
    assert got.headers["Content-Encoding"] == "gzip"
    assert got.text.split() == [str(i) for i in range(50000)]
    # Formats with a header or footer around all rows come whole (here Parquet, for pandas or DuckDB).
    got = _post(gateway, f"SELECT id, occurred_at, action FROM {table} LIMIT 10 FORMAT Parquet")
    assert got.status_code == 200 and got.content[:4] == b"PAR1" and got.content[-4:] == b"PAR1"
    assert got.headers["X-ClickHouse-Format"] == "Parquet"
    # ClickHouse's health check.
    assert httpx.get(gateway.url + "/ping").text == "Ok.\n"


REFUSED = [
    ("INSERT INTO {table} (id) VALUES (generateUUIDv7())", "not INSERT"),
    ("CREATE TABLE {db}.x (a UInt8) ENGINE = Memory", "not CREATE"),
    ("DROP TABLE {table}", "not DROP"),
    ("ALTER TABLE {table} DELETE WHERE 1", "not ALTER"),
    ("TRUNCATE TABLE {table}", "not TRUNCATE"),
    ("SET max_result_rows = 0", "not SET"),
    ("SELECT 1 SETTINGS readonly = 0", "Cannot modify 'readonly' setting in readonly mode"),
    ("SELECT count() FROM {table} SETTINGS max_result_rows = 0", "Cannot modify 'max_result_rows'"),
    ("SELECT * FROM file('/etc/passwd', 'LineAsString')", "table function file()"),
    ("SELECT file('/etc/hostname')", "function file()"),
    ("SELECT * FROM url('http://127.0.0.1:9/x', 'LineAsString')", "table function url()"),
    ("SELECT * FROM s3('http://127.0.0.1:9/bucket/x.csv', 'CSV', 'a String')", "table function s3()"),
    ("SELECT * FROM remote('127.0.0.1:9', 'system.one')", "table function remote()"),
    ("SELECT * FROM hdfs('hdfs://127.0.0.1:9/x', 'CSV')", "table function hdfs()"),
    ("SELECT * FROM mysql('127.0.0.1:9', 'd', 't', 'u', 'p')", "table function mysql()"),
    ("SELECT * FROM postgresql('127.0.0.1:9', 'd', 't', 'u', 'p')", "table function postgresql()"),
    ("SELECT * FROM executable('ls', 'LineAsString', 'x String')", "table function executable()"),
    ("SELECT * FROM python('x')", "table function python()"),
    ("SELECT * FROM merge('.*', '.*')", "table function merge()"),
    ("SELECT * FROM dictionary('x')", "table function dictionary()"),
    ("SELECT 1 INTO OUTFILE '{outfile}'", "INTO OUTFILE"),
    ("KILL QUERY WHERE 1", "not KILL QUERY"),
    ("SYSTEM STOP MERGES", "not SYSTEM"),
    ("SYSTEM DROP MARK CACHE", "not SYSTEM"),
    ("OPTIMIZE TABLE {table} FINAL", "not OPTIMIZE"),
    ("USE system", "not USE"),
    ("SELECT count() FROM other_db.events", "reads only the"),
    ("SELECT 1 WHERE 1 IN (SELECT * FROM file('x'))", "table function file()"),
]


@pytest.mark.parametrize(("sql", "says"), REFUSED)
def test_writes_settings_and_reaching_outside_are_refused(clickhouse_settings, gateway, tmp_path, sql, says):
    outfile = tmp_path / "written.txt"
    text = sql.format(table=clickhouse_settings.events_table, db=clickhouse_settings.clickhouse.database,
                      outfile=outfile)
    got = _post(gateway, text)
    assert got.status_code == 403, got.text
    code = got.headers["X-ClickHouse-Exception-Code"]
    assert code in ("164", "497")  # READONLY, ACCESS_DENIED: what a server says to a read-only user
    assert got.text.startswith(f"Code: {code}. DB::Exception: ") and says in got.text, got.text
    assert not outfile.exists()
    # clickhouse-connect surfaces the same refusal as a DatabaseError with the code.
    with pytest.raises(DatabaseError, match=code):
        _http_client(gateway).command(text)


def test_several_statements_in_one_request_are_refused_before_any_runs(clickhouse_settings, gateway):
    got = _post(gateway, f"SELECT 1; DROP TABLE {clickhouse_settings.events_table}")
    assert (got.status_code, got.headers["X-ClickHouse-Exception-Code"]) == (400, "62")
    assert "Multi-statements are not allowed" in got.text
    assert _post(gateway, f"EXISTS TABLE {clickhouse_settings.events_table}").text == "1\n"


# What the engine refuses by itself on a gateway handle (readonly = 1), without the parse-based checks.
ENGINE_REFUSES = [
    "INSERT INTO {table} (id) VALUES (generateUUIDv7())", "CREATE TABLE {db}.x (a UInt8) ENGINE = Memory",
    "DROP TABLE {table}", "ALTER TABLE {table} DELETE WHERE 1", "TRUNCATE TABLE {table}", "OPTIMIZE TABLE {table}",
    "SET max_result_rows = 0", "SET readonly = 0", "SELECT 1 SETTINGS readonly = 0",
    "SELECT * FROM file('/etc/passwd', 'LineAsString')", "SELECT * FROM url('http://127.0.0.1:9/x', 'LineAsString')",
    "SELECT * FROM s3('http://127.0.0.1:9/bucket/x.csv', 'CSV', 'a String')",
    "SELECT * FROM remote('127.0.0.1:9', 'system.one')", "SELECT * FROM hdfs('hdfs://127.0.0.1:9/x', 'CSV')",
    "SELECT * FROM mysql('127.0.0.1:9', 'd', 't', 'u', 'p')",
    "SELECT * FROM postgresql('127.0.0.1:9', 'd', 't', 'u', 'p')",
    "SELECT * FROM executable('ls', 'LineAsString', 'x String')", "SELECT * FROM dictionary('x')",
    "SYSTEM DROP MARK CACHE", "SYSTEM FLUSH LOGS",
]
# What readonly = 1 lets through, and the parse-based checks refuse (test above).
ENGINE_ALLOWS = ["SELECT file('/etc/hostname')", "SELECT count() FROM python('x')",
                 "SELECT 1 INTO OUTFILE '{outfile}'", "KILL QUERY WHERE query = 'nothing-runs-this' SYNC"]


def test_the_engine_refuses_writes_and_outside_reads_by_itself(clickhouse_settings, gateway, tmp_path):
    from clickhouse.readonly_engine import EngineQueryError

    names = {"table": clickhouse_settings.events_table, "db": clickhouse_settings.clickhouse.database,
             "outfile": tmp_path / "written.txt"}
    with gateway.engine.handle() as handle:
        for sql in ENGINE_REFUSES:
            with pytest.raises(EngineQueryError) as raised:
                handle.query(sql.format(**names))
            assert raised.value.code in (164, 497), (sql, raised.value.message)
        let_through = []
        for sql in ENGINE_ALLOWS:
            try:
                handle.query(sql.format(**names))
                let_through.append(sql)
            except EngineQueryError as err:
                assert err.code not in (164, 497), sql  # failed for another reason (e.g. no such object)
                let_through.append(sql)
    assert let_through == ENGINE_ALLOWS


def test_every_table_function_outside_the_list_is_refused(gateway):
    names = _http_client(gateway).query("SELECT name FROM system.table_functions").result_rows
    allowed = {"numbers", "numbers_mt", "zeros", "zeros_mt", "generate_series", "generateSeries", "generateRandom",
               "values", "view", "null"}
    for (name,) in names:
        got = _post(gateway, f"SELECT * FROM {name}('x') LIMIT 1")
        if name in allowed:
            continue
        # Refused, or not even a valid call (viewIfPermitted needs ELSE): never an answer.
        assert (got.status_code, got.headers["X-ClickHouse-Exception-Code"]) in ((403, "497"), (400, "62")), name


def test_settings_in_the_url_cannot_lift_the_fence_and_writes_still_work_elsewhere(clickhouse_settings, gateway):
    table = clickhouse_settings.events_table
    for name, value in [("readonly", "0"), ("max_result_rows", "0"), ("max_execution_time", "0"),
                        ("max_execution_time", "-1")]:
        got = _post(gateway, "SELECT 1", params={name: value})
        assert (got.status_code, got.headers["X-ClickHouse-Exception-Code"]) == (403, "164"), got.text
        assert f"Cannot modify '{name}' setting in readonly mode" in got.text
    # Keeping a setting's value is no change, as on a server.
    assert _post(gateway, "SELECT 1", params={"max_result_rows": "100000"}).text == "1\n"
    # clickhouse-go (Grafana) sends its deadline + 5 s on every query: accepted, and the gateway's limit
    # (5 s here) still ends a longer query.
    assert _post(gateway, "SELECT 1", params={"max_execution_time": "5"}).text == "1\n"
    assert _post(gateway, "SELECT 1", params={"max_execution_time": "65"}).text == "1\n"
    started = time.monotonic()
    slow = _post(gateway, "SELECT count() FROM numbers(100000000000)", params={"max_execution_time": "3600"})
    assert slow.headers["X-ClickHouse-Exception-Code"] == "159", slow.text
    assert time.monotonic() - started < 30
    # The product's own handle is not read-only.
    product = get_client(clickhouse_settings.clickhouse.dsn)
    product.command(f"CREATE TABLE {clickhouse_settings.clickhouse.database}.scratch (a UInt8) ENGINE = Memory")
    product.command(f"INSERT INTO {clickhouse_settings.clickhouse.database}.scratch VALUES (1)")
    assert _post(gateway, f"SELECT count() FROM {table} WHERE 0").text == "0\n"


def test_a_setting_sent_with_one_request_does_not_apply_to_the_next(gateway):
    # chDB accepts `limit` under readonly = 1 (Grafana's row limit sends it); it stays on the handle it was
    # SET on, so that handle is replaced after the request. Two handles here: every later query is checked.
    assert _post(gateway, "SELECT number FROM numbers(10)", params={"limit": "3"}).text.split() == ["0", "1", "2"]
    for _ in range(4):
        assert len(_post(gateway, "SELECT number FROM numbers(10)").text.split()) == 10


@pytest.mark.parametrize(("auth", "headers", "params"), [
    (None, {}, {}),
    ((USER, "wrong"), {}, {}),
    (("default", ""), {}, {}),
    (None, {"X-ClickHouse-User": USER, "X-ClickHouse-Key": "wrong"}, {}),
    (None, {}, {"user": USER, "password": "wrong"}),
    (None, {}, {"user": "someone"}),
])
def test_missing_or_wrong_credentials_get_401(gateway, auth, headers, params):
    got = _post(gateway, "SELECT 1", auth=auth, headers=headers, params=params)
    assert got.status_code == 401
    assert got.headers["X-ClickHouse-Exception-Code"] == "516"
    assert "Authentication failed" in got.text and PASSWORD not in got.text


def test_clickhouse_connect_with_a_wrong_password_is_refused(gateway):
    with pytest.raises(DatabaseError) as raised:
        _http_client(gateway, password="wrong")
    assert "516" in str(raised.value)


def test_limits_end_a_query_cleanly_and_the_gateway_keeps_serving(gateway):
    got = _post(gateway, "SELECT number FROM numbers(200000)")
    if got.status_code == 200:  # over the limit after the first block: the stream ends with the error
        assert f"__exception__\r\n{got.headers['X-ClickHouse-Exception-Tag']}\r\nCode: 396." in got.text
    else:
        assert got.headers["X-ClickHouse-Exception-Code"] == "396"
    assert "Limit for result exceeded" in got.text
    with pytest.raises(DatabaseError, match="396"):
        _http_client(gateway).query("SELECT number FROM numbers(200000)")
    slow = _post(gateway, "SELECT count() FROM numbers(100000000000)")
    assert slow.headers["X-ClickHouse-Exception-Code"] == "159", slow.text
    assert _post(gateway, "SELECT 42").text == "42\n"


def test_an_error_after_the_first_block_ends_the_stream_visibly(gateway):
    sql = ("SELECT number FROM numbers(5000000) WHERE number % 100 = 0 "
           "AND throwIf(number > 4000000, 'stop here') = 0 FORMAT TabSeparated")
    got = _post(gateway, sql)
    assert got.status_code == 200  # the engine's first blocks went out before the failure
    tag = got.headers["X-ClickHouse-Exception-Tag"]
    assert got.text.startswith("0\n100\n200\n")
    assert f"__exception__\r\n{tag}\r\nCode: 395. DB::Exception: " in got.text and "stop here" in got.text
    with pytest.raises(DatabaseError, match="stop here"):
        _http_client(gateway).query(sql.removesuffix(" FORMAT TabSeparated"))


def test_query_ids_are_unique_when_not_given_and_never_break_a_header(gateway):
    ids = {_post(gateway, "SELECT 1").headers["X-ClickHouse-Query-Id"] for _ in range(3)}
    assert len(ids) == 3 and all(uuid.UUID(i) for i in ids)
    got = _post(gateway, "SELECT 1", params={"query_id": "x\r\nSet-Cookie: a=b"})
    assert "set-cookie" not in got.headers and uuid.UUID(got.headers["X-ClickHouse-Query-Id"])


def test_long_parameters_travel_as_a_form_as_clickhouse_connect_sends_them(gateway):
    long_value = "x" * 6000  # over clickhouse-connect's 4 KiB: it switches to multipart/form-data
    got = _http_client(gateway).query("SELECT length({v:String}), {n:UInt8}", parameters={"v": long_value, "n": 7})
    assert got.result_rows == [(6000, 7)]
