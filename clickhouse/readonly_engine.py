"""Read-only SQL on the embedded engine, fenced by the engine itself.

The embedded default runs ClickHouse's engine (chDB) inside the product's
process, so a data team cannot open it from another process. The SQL gateway
(``clickhouse/http_gateway.py``) runs their queries here instead, on dedicated
engine handles of the same engine:

1. **The engine's own fence.** Each handle gets the limits (execution time,
   result rows and bytes, memory, threads) and then ``SET readonly = 1``. From
   then on the engine refuses on that handle every write, DDL, ``SET`` or
   ``SETTINGS`` that changes a value (including ``readonly`` itself and the
   limits), and the table functions that reach outside (``file``, ``url``,
   ``s3``, ``remote``, ``mysql``, ``executable``, ...). The product's own
   handles keep writing.
2. **What readonly = 1 still lets through**, found by test
   (``tests/integration/test_sql_gateway.py``) and refused here from the
   engine's parse of the query, never from the SQL text: the engine checks that
   the text is one statement (``formatQuery``), prints its syntax tree
   (``EXPLAIN AST``), and the query runs only if that tree is a read
   (``SELECT``, ``SHOW``, ``DESCRIBE``, ``EXISTS``, ``EXPLAIN``) with no
   ``INTO OUTFILE`` (which writes a file even under readonly), calls no
   function that reads the machine's files (``file()``) or other tables by
   name (``joinGet``), reads table functions only from a short list of
   generators (``numbers``, ``values``, ...; ``python()`` of chDB reads the
   host process's objects), and names tables only in the audit database and
   the engine's metadata (``system``, ``information_schema``). That also
   refuses ``KILL QUERY`` and ``SYSTEM STOP MERGES``, which readonly = 1 allows.
   The text that runs is the engine's canonical rendering of the tree that was
   checked.
"""

from __future__ import annotations

import logging
import queue
import re
import threading
import time
from collections.abc import Callable, Generator, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, cast

import chdb

from clickhouse.errors import StoreError

logger = logging.getLogger(__name__)

_connect = cast(Callable[[str], Any], chdb.connect)

# ClickHouse error codes the gateway raises itself (same numbers as the server's).
READONLY = 164
ACCESS_DENIED = 497
UNKNOWN_DATABASE = 81
TOO_MANY_SIMULTANEOUS_QUERIES = 202
SYNTAX_ERROR = 62

_CODE_NAMES = {READONLY: "READONLY", ACCESS_DENIED: "ACCESS_DENIED", UNKNOWN_DATABASE: "UNKNOWN_DATABASE",
               TOO_MANY_SIMULTANEOUS_QUERIES: "TOO_MANY_SIMULTANEOUS_QUERIES", SYNTAX_ERROR: "SYNTAX_ERROR"}

# Statement kinds (the root node of EXPLAIN AST) that only read.
_READ_STATEMENTS = frozenset({
    "SelectWithUnionQuery", "SelectIntersectExceptQuery", "ShowTables", "ShowColumns", "DescribeQuery",
    "ExistsTableQuery", "ExistsDatabaseQuery", "ExistsViewQuery", "ExistsDictionaryQuery",
    "ShowCreateTableQuery", "ShowCreateDatabaseQuery", "ShowCreateViewQuery", "Explain",
})
# Table functions that generate rows and read nothing outside the query.
_ALLOWED_TABLE_FUNCTIONS = frozenset({
    "numbers", "numbers_mt", "zeros", "zeros_mt", "generate_series", "generateSeries", "generateRandom",
    "values", "view", "null",
})
# Scalar functions that read outside the query: a file of the machine, another table by name, a model file.
_DENIED_FUNCTIONS = frozenset({"file", "joinGet", "joinGetOrNull", "catboostEvaluate"})
METADATA_DATABASES = frozenset({"system", "information_schema", "INFORMATION_SCHEMA"})

_ERROR_CODE = re.compile(r"Code: (\d+)\.")
_ERROR_NAME = re.compile(r"\(([A-Z_]+)\)\s*(?:\(version [^)]*\))?\s*$")


class GatewayError(StoreError):
    """A query the gateway did not run, with the ClickHouse error code a client expects.

    ``message`` is the text after ``DB::Exception:``; ``name`` the code's symbolic name.
    """

    def __init__(self, code: int, name: str, message: str) -> None:
        super().__init__(message)
        self.code, self.name, self.message = code, name, message


class QueryRefused(GatewayError):
    """The fence refused the query (a write, a setting, a table function, a file, another database)."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(code, _CODE_NAMES[code], message)


class EngineQueryError(GatewayError):
    """The engine itself refused or failed the query (readonly, limits, syntax, unknown table...)."""

    @classmethod
    def from_engine(cls, err: Exception) -> EngineQueryError:
        text = str(err).strip()
        start = text.find("Code: ")
        text = text[start:] if start > 0 else text
        # chDB nests "Code: 164. DB::Exception: Code: 164. DB::Exception: ..." for SETTINGS errors.
        while text.startswith("Code: ") and text.count("DB::Exception: ") > 1 and "DB::Exception: Code: " in text:
            text = text.split("DB::Exception: ", 1)[1]
        code_match = _ERROR_CODE.match(text)
        code = int(code_match.group(1)) if code_match else 1001
        name_match = _ERROR_NAME.search(text)
        name = name_match.group(1) if name_match else "STD_EXCEPTION"
        message = text.split("DB::Exception: ", 1)[1] if "DB::Exception: " in text else text
        while True:  # trailing " (NAME)", " (version ...)" and periods, which the gateway writes once
            shorter = re.sub(r"\s*(\(version [^)]*\)|\([A-Z_]+\)|\.)\s*$", "", message)
            if shorter == message:
                break
            message = shorter
        return cls(code, name, message)


@dataclass(frozen=True)
class EngineLimits:
    """Limits set on every gateway handle before ``readonly = 1``, so a query cannot raise them."""

    max_execution_seconds: float = 60.0
    max_result_rows: int = 10_000_000
    max_result_bytes: int = 1_000_000_000
    max_memory_usage: int = 2_000_000_000
    max_threads: int = 2

    def statements(self) -> list[str]:
        return [
            f"SET max_execution_time = {self.max_execution_seconds}",
            f"SET max_result_rows = {self.max_result_rows}",
            f"SET max_result_bytes = {self.max_result_bytes}",
            "SET result_overflow_mode = 'throw'",
            f"SET max_memory_usage = {self.max_memory_usage}",
            f"SET max_threads = {self.max_threads}",
            "SET allow_introspection_functions = 0",
            "SET allow_ddl = 0",
            "SET readonly = 1",
        ]


@dataclass(frozen=True)
class CheckedQuery:
    """A query the fence let through: the engine's canonical text and its output format (None: the default)."""

    sql: str
    format: str | None
    select: bool  # the engine streams only SELECTs; SHOW, DESCRIBE, EXISTS, EXPLAIN answer whole


@dataclass
class QueryStats:
    """What ``X-ClickHouse-Summary`` reports; filled in as the result is read.

    No ``result_rows``: chDB hands over the formatted bytes, not a row count.
    """

    read_rows: int = 0
    read_bytes: int = 0
    result_bytes: int = 0
    elapsed_ns: int = 0


def escape_param(value: str) -> str:
    """A query parameter value in ClickHouse's escaped form (what ``param_x`` carries over HTTP)."""
    return (value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")
            .replace("\r", "\\r").replace("\0", "\\0"))


def quote_identifier(name: str) -> str:
    return "`" + name.replace("\\", "\\\\").replace("`", "\\`") + "`"


class _Handle:
    """One chDB connection with the limits and readonly = 1 applied; used by one request at a time.

    ``broken`` is set when a query failed or a streamed result did not end normally (an error
    mid-stream, a client that went away): measured on chDB 26.9, the next query on such a handle
    can return the failed query's partial output (a Native block of a query stopped by
    ``max_result_rows`` came back as the answer to the next ``formatQuery``), so the pool replaces
    the handle with a fresh one. So does a request whose URL settings the engine accepted
    (``limit=N``, which Grafana's row limit sends, is accepted under readonly = 1 on chDB 26.9):
    a ``SET`` stays on the handle, and would otherwise apply to the next client's queries.
    """

    def __init__(self, connection_string: str, limits: EngineLimits) -> None:
        self.conn: Any = _connect(connection_string)
        for statement in limits.statements():
            self.conn.query(statement, "TabSeparated")
        self.database: str | None = None
        self.broken = False
        # A request's settings (URL parameters) the engine accepted: the handle is replaced after the
        # request, so they never apply to the next client's query.
        self.settings_changed = False

    def query(self, sql: str, fmt: str = "TabSeparated", params: Mapping[str, str] | None = None) -> Any:
        try:
            return self.conn.query(sql, fmt, params=dict(params or {}))
        except Exception as err:
            self.broken = True
            raise EngineQueryError.from_engine(err) from err

    def text(self, sql: str, params: Mapping[str, str] | None = None) -> str:
        data = bytes(self.query(sql, "TabSeparatedRaw", params).bytes())
        try:
            return data.decode()
        except UnicodeDecodeError:
            self.broken = True
            raise GatewayError(1001, "STD_EXCEPTION", "The engine handle returned an unreadable answer; "
                                                      "it has been replaced, please retry") from None


class ReadOnlyEngine:
    """A pool of fenced handles on the process's engine, for read-only SQL from outside.

    Args:
        connection_string: chDB's connection string of the engine the product opened
            (``clickhouse.client.engine_connection_string``): one engine per process.
        database: the audit database; the default database of every query, and the only
            one besides the engine's metadata that queries may name.
        limits: set on each handle before ``readonly = 1``.
        handles: how many gateway queries run at once; more wait up to ``wait_seconds``.
    """

    def __init__(self, connection_string: str, database: str, limits: EngineLimits, *, handles: int = 2,
                 wait_seconds: float = 10.0) -> None:
        self._connection_string, self._limits = connection_string, limits
        self.database = database
        self.allowed_databases = frozenset({database}) | METADATA_DATABASES
        self._wait_seconds = wait_seconds
        self._pool: queue.LifoQueue[_Handle] = queue.LifoQueue()
        self._all: list[_Handle] = []
        for _ in range(handles):
            handle = _Handle(connection_string, limits)
            self._all.append(handle)
            self._pool.put(handle)
        probe = self._all[0]
        self.version, self.timezone = probe.text("SELECT version(), timezone()").strip().split("\t")
        self._output_formats = frozenset(
            probe.text("SELECT name FROM system.formats WHERE is_output").split()
        )
        self._lock = threading.Lock()

    def close(self) -> None:
        for handle in self._all:
            try:
                handle.conn.close()
            except Exception:
                logger.debug("sql_gateway_handle_close_failed", exc_info=True)

    @contextmanager
    def handle(self) -> Iterator[_Handle]:
        """A fenced handle for one request; waits for one to be free, or refuses like a busy server."""
        try:
            handle = self._pool.get(timeout=self._wait_seconds)
        except queue.Empty:
            raise QueryRefused(TOO_MANY_SIMULTANEOUS_QUERIES,
                               f"Too many simultaneous queries: all {len(self._all)} SQL gateway slots were busy "
                               f"for {self._wait_seconds:g} s") from None
        try:
            yield handle
        finally:
            self._pool.put(self._renewed(handle) if handle.broken or handle.settings_changed else handle)

    def _renewed(self, handle: _Handle) -> _Handle:
        logger.debug("sql_gateway_handle_replaced")
        try:
            handle.conn.close()
        except Exception:
            logger.debug("sql_gateway_handle_close_failed", exc_info=True)
        fresh = _Handle(self._connection_string, self._limits)
        with self._lock:
            self._all[self._all.index(handle)] = fresh
        return fresh

    def prepare(self, handle: _Handle, sql: str, *, database: str | None, settings: Mapping[str, str],
                params: Mapping[str, str]) -> CheckedQuery:
        """Check one query on ``handle`` and make the handle ready to run it.

        Raises:
            QueryRefused: the fence refused it (the message says what and why).
            EngineQueryError: the engine refused it (syntax, a setting change, an unknown database...).
        """
        use = database or self.database
        if use not in self.allowed_databases:
            raise QueryRefused(ACCESS_DENIED, f"Not enough privileges: the SQL gateway reads only the "
                                              f"`{self.database}` database and the engine's metadata, not `{use}`")
        if handle.database != use:
            handle.query(f"USE {quote_identifier(use)}")
            handle.database = use
        for name, value in settings.items():
            if name == "max_execution_time" and is_client_deadline(value):
                # clickhouse-go (Grafana's data source) sends its own deadline plus 5 s with every
                # query: Grafana's default 60 s query timeout arrives as 65, its 10 s health check as
                # 15. That is the client's patience, not a request for more time: the handle's limit
                # (set before readonly = 1, which no query can change) applies either way, so the
                # value is not passed on. Refusing it would fail every Grafana query.
                if float(value) > self._limits.max_execution_seconds:
                    logger.debug("sql_gateway_time_limit_kept requested=%s limit=%s", value,
                                 self._limits.max_execution_seconds)
                continue
            # The engine decides: under readonly = 1 it accepts only the value a setting already has.
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
                raise QueryRefused(READONLY, f"Cannot modify setting {name!r}: not a setting name")
            handle.settings_changed = True
            handle.query(f"SET {name} = {{v:String}}".replace("{v:String}", _sql_string(value)))
        if not sql.strip():
            raise EngineQueryError(SYNTAX_ERROR, "SYNTAX_ERROR", "Empty query")
        canonical = handle.text("SELECT formatQuery({q:String})", {"q": escape_param(sql)}).rstrip("\n")
        tree = handle.text(f"EXPLAIN AST {canonical}", params)
        fmt = self._check_tree(tree)
        return CheckedQuery(canonical, fmt, tree.startswith("Select"))

    def _check_tree(self, tree: str) -> str | None:
        """Refuse what readonly = 1 lets through; returns the query's FORMAT, if it names one."""
        nodes = [(len(line) - len(line.lstrip(" ")), line.strip()) for line in tree.splitlines() if line.strip()]
        if not nodes:
            raise QueryRefused(READONLY, "Cannot execute query: the engine returned no syntax tree for it")
        root = nodes[0][1].split(" ", 1)[0]
        if root not in _READ_STATEMENTS:
            kind = nodes[0][1].split(" (children", 1)[0]
            raise QueryRefused(READONLY, f"Cannot execute query in readonly mode: the SQL gateway runs reads only "
                                         f"(SELECT, SHOW, DESCRIBE, EXISTS, EXPLAIN), not {_statement_name(kind)}")
        fmt: str | None = None
        for index, (depth, text) in enumerate(nodes):
            kind, _, rest = text.partition(" ")
            name = rest.split(" (", 1)[0].strip()
            if depth == 1 and kind == "Literal":
                raise QueryRefused(ACCESS_DENIED, "Not enough privileges: INTO OUTFILE writes a file on the "
                                                  "server; the SQL gateway sends results only to the client")
            if depth == 1 and kind == "Identifier" and name in self._output_formats:
                fmt = name
            if kind == "Function":
                parent = _parent(nodes, index)
                if parent == "TableExpression" and name not in _ALLOWED_TABLE_FUNCTIONS:
                    raise QueryRefused(ACCESS_DENIED, f"Not enough privileges: table function {name}() reads "
                                                      f"outside the `{self.database}` database; the SQL gateway "
                                                      f"allows only {', '.join(sorted(_ALLOWED_TABLE_FUNCTIONS))}")
                if parent != "TableExpression" and name in _DENIED_FUNCTIONS:
                    raise QueryRefused(ACCESS_DENIED, f"Not enough privileges: function {name}() reads outside "
                                                      f"the `{self.database}` database")
            if kind == "TableIdentifier" and "." in name and \
                    not any(name.startswith(db + ".") for db in self.allowed_databases):
                raise QueryRefused(ACCESS_DENIED, f"Not enough privileges: the SQL gateway reads only the "
                                                  f"`{self.database}` database and the engine's metadata, not {name}")
        return fmt

    def run(self, handle: _Handle, query: CheckedQuery, fmt: str, params: Mapping[str, str],
            stats: QueryStats) -> bytes:
        """Run the whole query and return its result (for ``wait_end_of_query`` and small answers)."""
        started = time.monotonic_ns()
        result = handle.query(query.sql, fmt, params)
        data = bytes(result.bytes())
        stats.read_rows, stats.read_bytes = int(result.rows_read()), int(result.bytes_read())
        stats.result_bytes, stats.elapsed_ns = len(data), time.monotonic_ns() - started
        return data

    def stream(self, handle: _Handle, query: CheckedQuery, fmt: str, params: Mapping[str, str],
               stats: QueryStats) -> Iterator[bytes]:
        """The query's result block by block (each block a complete piece of the format).

        The first block is read before this returns, so errors at the start raise here; a later
        failure raises ``EngineQueryError`` from the iterator. Closing the iterator cancels the query.
        """
        started = time.monotonic_ns()
        try:
            streaming = handle.conn.send_query(query.sql, fmt, params=dict(params))
        except Exception as err:
            handle.broken = True
            raise EngineQueryError.from_engine(err) from err

        def blocks() -> Generator[bytes, None, None]:
            finished = False
            try:
                for chunk in streaming:
                    data = bytes(chunk.bytes())
                    if data:
                        stats.result_bytes += len(data)
                        stats.elapsed_ns = time.monotonic_ns() - started
                        yield data
                finished = True
            except Exception as err:
                raise EngineQueryError.from_engine(err) from err
            finally:
                handle.broken = handle.broken or not finished
                streaming.close()

        iterator = blocks()
        try:
            first = next(iterator)
        except StopIteration:
            return iter(())
        except BaseException:
            iterator.close()
            raise
        return _prepend(first, iterator)


def _prepend(first: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
    yield first
    yield from rest


def _parent(nodes: list[tuple[int, str]], index: int) -> str:
    depth = nodes[index][0]
    for back in range(index - 1, -1, -1):
        if nodes[back][0] < depth:
            return nodes[back][1].split(" ", 1)[0]
    return ""


def _statement_name(kind: str) -> str:
    names = {"InsertQuery": "INSERT", "Set": "SET", "KillQueryQuery": "KILL QUERY", "SYSTEM": "SYSTEM",
             "OptimizeQuery": "OPTIMIZE", "UseQuery": "USE", "AlterQuery": "ALTER", "CreateQuery": "CREATE",
             "DropQuery": "DROP", "TruncateQuery": "TRUNCATE", "RenameQuery": "RENAME"}
    for prefix, label in names.items():
        if kind.startswith(prefix):
            return label
    return kind


def _sql_string(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def is_client_deadline(value: str) -> bool:
    """A positive, finite number of seconds: a client's deadline (0 would mean none, and is the engine's to refuse)."""
    try:
        seconds = float(value)
    except ValueError:
        return False
    return 0 < seconds < float("inf")
