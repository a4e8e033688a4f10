"""The part of ClickHouse's HTTP interface that data teams' tools use, served from the embedded engine.

In the embedded default the engine lives inside the product's process, so
clickhouse-connect (``http://`` DSN), ``curl`` and Grafana's ClickHouse data
source reach it here, on its own port, with read-only handles
(``clickhouse/readonly_engine.py``). What is implemented, as a ClickHouse
server does it:

- the query in ``query=`` and/or the POST body (joined by a newline), or in
  ``multipart/form-data`` fields; ``param_<name>`` values for ``{name:Type}``;
  ``database=``; ``default_format=`` (else ``TabSeparated``) or the query's
  ``FORMAT``; ``query_id=``; other URL parameters are settings, which the engine
  refuses under readonly = 1 unless they keep the current value;
- credentials by ``X-ClickHouse-User``/``X-ClickHouse-Key``, basic auth, or
  ``user``/``password`` parameters; failures are ``Code: 516`` with HTTP 401;
- ``Accept-Encoding`` (gzip, deflate, lz4): the response is compressed as it
  streams; ``wait_end_of_query=1`` (what clickhouse-connect sends) buffers the
  result and sends a complete summary, otherwise blocks stream as the engine
  produces them;
- ``X-ClickHouse-Format``, ``-Summary``, ``-Query-Id``, ``-Timezone``,
  ``-Server-Display-Name``; errors as ``Code: N. DB::Exception: ...`` text with
  ``X-ClickHouse-Exception-Code`` and the server's HTTP statuses; an error after
  the first block is written inside the stream between
  ``X-ClickHouse-Exception-Tag`` markers, as ClickHouse 25 does;
- ``GET /ping`` and ``GET /`` answer ``Ok.``;
- ``Native`` in the layout of the client's ``client_protocol_version``
  (``clickhouse/native_blocks.py``): clickhouse-go, and so Grafana's ClickHouse
  data source, sends 54460 and reads block info and a serialization byte per
  column, which the engine's revision-0 ``Native`` lacks.

Not implemented (refused with a message): ``compress=1`` (ClickHouse's own
block compression; clickhouse-go uses it over HTTP only when configured for
LZ4/ZSTD, which Grafana's data source is not: it asks for gzip),
``decompress=1``, external data files, sessions' state.
"""

from __future__ import annotations

import base64
import email.parser
import email.policy
import hmac
import json
import logging
import re
import secrets
import threading
import uuid
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol
from urllib.parse import parse_qsl, urlsplit

from clickhouse.native_blocks import NativeUpgrade, UnsupportedNativeType
from clickhouse.readonly_engine import (
    EngineQueryError,
    GatewayError,
    QueryRefused,
    QueryStats,
    ReadOnlyEngine,
)

logger = logging.getLogger(__name__)

AUTHENTICATION_FAILED = 516
NOT_IMPLEMENTED = 48
CANNOT_PARSE_NUMBER = 72
QUERY_IS_TOO_LARGE = 393
MAX_REQUEST_BYTES = 16 * 1024 * 1024
_QUERY_ID = re.compile(r"[A-Za-z0-9._:@-]{1,128}")

# URL parameters that steer the HTTP exchange rather than the query's settings.
_TRANSPORT_PARAMS = frozenset({
    "query", "database", "default_format", "user", "password", "query_id", "session_id", "session_timeout",
    "session_check", "close_session", "buffer_size", "wait_end_of_query", "client_protocol_version", "role",
    "quota_key", "stacktrace", "compress", "decompress", "enable_http_compression", "http_zlib_compression_level",
    "send_progress_in_http_headers", "http_headers_progress_interval_ms",
    "cancel_http_readonly_queries_on_client_close", "http_wait_end_of_query", "http_response_buffer_size",
    "add_http_cors_header", "extremes",
})

_CONTENT_TYPES = {
    "TabSeparated": "text/tab-separated-values; charset=UTF-8",
    "TSV": "text/tab-separated-values; charset=UTF-8",
    "TabSeparatedWithNames": "text/tab-separated-values; charset=UTF-8",
    "TSVWithNames": "text/tab-separated-values; charset=UTF-8",
    "CSV": "text/csv; charset=UTF-8; header=absent",
    "CSVWithNames": "text/csv; charset=UTF-8; header=present",
    "JSON": "application/json; charset=UTF-8",
    "JSONCompact": "application/json; charset=UTF-8",
    "JSONEachRow": "application/x-ndjson; charset=UTF-8",
    "JSONCompactEachRow": "application/x-ndjson; charset=UTF-8",
}

# Formats whose blocks, concatenated, are the whole result (no header or footer around all blocks).
_STREAMABLE = frozenset({"Native", "TabSeparated", "TSV", "TabSeparatedRaw", "TSVRaw", "CSV", "RowBinary",
                         "JSONEachRow", "JSONCompactEachRow", "JSONStringsEachRow", "Values", "LineAsString"})

# ClickHouse's HTTP statuses for its error codes (HTTPHandler's exceptionCodeToHTTPStatus).
_STATUS = {516: 401, 192: 401, 193: 401, 194: 401, 164: 403, 497: 403, 60: 404, 81: 404, 202: 503, 159: 500}
_BAD_REQUEST = frozenset({393, 62, 27, 36, 38, 41, 42, 43, 44, 46, 47, 53, 57, 73, 115, 456, 457, 6, 25, 26, 69, 70,
                          72, 117, 184, 386, 395, 396, 241})


@dataclass(frozen=True)
class GatewayCredentials:
    """The one user the gateway accepts (generated on first start by ``auditlog up``)."""

    user: str
    password: str

    def matches(self, user: str, password: str) -> bool:
        return hmac.compare_digest(user.encode(), self.user.encode()) and \
            hmac.compare_digest(password.encode(), self.password.encode())

    @staticmethod
    def generate(user: str) -> GatewayCredentials:
        return GatewayCredentials(user, secrets.token_urlsafe(24))


@dataclass
class _Request:
    user: str
    password: str
    sql: str
    params: dict[str, str]
    settings: dict[str, str]
    database: str | None
    default_format: str
    query_id: str
    wait_end: bool
    encoding: str | None
    protocol_revision: int = 0
    extra: dict[str, str] = field(default_factory=dict)


class _Compressor(Protocol):
    def compress(self, data: bytes) -> bytes: ...

    def flush(self) -> bytes: ...


def _compressor(encoding: str) -> _Compressor:
    if encoding == "gzip":
        return zlib.compressobj(6, zlib.DEFLATED, 31)
    if encoding == "deflate":
        return zlib.compressobj(6)
    import lz4.frame

    class _Lz4:
        def __init__(self) -> None:
            self._c = lz4.frame.LZ4FrameCompressor()
            self._begun = False

        def compress(self, data: bytes) -> bytes:
            head = b"" if self._begun else self._c.begin()
            self._begun = True
            return bytes(head + self._c.compress(data))

        def flush(self) -> bytes:
            head = b"" if self._begun else self._c.begin()
            self._begun = True
            return bytes(head + self._c.flush())

    return _Lz4()


def _supported_encodings() -> list[str]:
    names = ["gzip", "deflate"]
    try:
        import lz4.frame  # noqa: F401

        names.insert(0, "lz4")
    except ImportError:
        pass
    return names


_ENCODINGS = _supported_encodings()


class SqlGateway:
    """A ClickHouse-compatible HTTP endpoint over a ``ReadOnlyEngine``, in threads of this process.

    Args:
        engine: the fenced handles the queries run on.
        credentials: the user and password clients must send.
        host, port: where to listen (port 0 picks a free one; ``address`` says which).
        display_name: ``X-ClickHouse-Server-Display-Name``.
    """

    def __init__(self, engine: ReadOnlyEngine, credentials: GatewayCredentials, host: str = "127.0.0.1",
                 port: int = 8123, display_name: str = "auditlog-embedded") -> None:
        self.engine, self.credentials, self.display_name = engine, credentials, display_name
        gateway = self

        class Handler(_Handler):
            owner = gateway

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def address(self) -> tuple[str, int]:
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    @property
    def url(self) -> str:
        host, port = self.address
        return f"http://{host}:{port}"

    def start(self) -> None:
        """Serve in a daemon thread until ``stop()``."""
        self._thread = threading.Thread(target=self._server.serve_forever, name="auditlog-sql-gateway", daemon=True)
        self._thread.start()
        logger.info("sql_gateway_started url=%s user=%s", self.url, self.credentials.user)

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.engine.close()
        logger.info("sql_gateway_stopped url=%s", self.url)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    owner: SqlGateway
    server_version = "auditlog-sql-gateway"

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("sql_gateway_http " + format, *args)

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def do_HEAD(self) -> None:
        self._send_plain(200, b"")

    def _serve(self) -> None:
        query_id = str(uuid.uuid4())
        try:
            path = urlsplit(self.path).path
            url_params = dict(parse_qsl(urlsplit(self.path).query, keep_blank_values=True))
            body = self._read_body()
            if path in ("/ping", "/") and not url_params.get("query") and not body:
                self._send_plain(200, b"Ok.\n")
                return
            if path not in ("/", "/query"):
                self._send_plain(404, f"There is no handle {path}\n".encode())
                return
            request = self._parse(url_params, body)
            # A client's query id goes back in a header: only a plain token, never a header break.
            query_id = request.query_id if _QUERY_ID.fullmatch(request.query_id) else query_id
            request.query_id = query_id
            self._authenticate(request)
            self._answer(request)
        except GatewayError as err:
            self._send_error(err, query_id)
        except (ConnectionError, TimeoutError):
            logger.info("sql_gateway_client_gone query_id=%s", query_id)
        except Exception as err:  # a bug here must still answer like a server, not drop the connection
            logger.exception("sql_gateway_internal_error query_id=%s", query_id)
            self._send_error(GatewayError(1001, "STD_EXCEPTION", f"SQL gateway error: {type(err).__name__}"),
                             query_id)

    # -- request -------------------------------------------------------------------------------

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            parts, total = [], 0
            while True:
                size = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline().strip():
                        pass
                    break
                total += size
                if total > MAX_REQUEST_BYTES:
                    self.close_connection = True
                    raise _too_large()
                parts.append(self.rfile.read(size))
                self.rfile.readline()
            data = b"".join(parts)
        else:
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_REQUEST_BYTES:
                self.close_connection = True
                raise _too_large()
            data = self.rfile.read(length) if length else b""
        encoding = (self.headers.get("Content-Encoding") or "").lower()
        if data and encoding in ("gzip", "deflate"):
            data = zlib.decompress(data, 47 if encoding == "gzip" else 15)
        elif data and encoding == "lz4":
            import lz4.frame

            data = lz4.frame.decompress(data)
        elif data and encoding not in ("", "identity"):
            raise EngineQueryError(NOT_IMPLEMENTED, "NOT_IMPLEMENTED", f"Content-Encoding {encoding} is not supported")
        return data

    def _parse(self, url_params: dict[str, str], body: bytes) -> _Request:
        fields = dict(url_params)
        content_type = self.headers.get("Content-Type", "")
        if content_type.lower().startswith("multipart/form-data"):
            form = _form_fields(content_type, body)
            query_text = "\n".join(p for p in (fields.get("query", ""), form.pop("query", "")) if p)
            fields.update(form)
        else:
            query_text = "\n".join(p for p in (fields.get("query", ""), body.decode("utf-8", "replace")) if p)
        for name in ("compress", "decompress"):
            if fields.get(name) == "1":
                raise EngineQueryError(NOT_IMPLEMENTED, "NOT_IMPLEMENTED",
                                       f"{name}=1 (ClickHouse's block compression) is not supported by the SQL "
                                       f"gateway: use Accept-Encoding: gzip / lz4 instead")
        params = {k[6:]: v for k, v in fields.items() if k.startswith("param_")}
        settings = {k: v for k, v in fields.items() if not k.startswith("param_") and k not in _TRANSPORT_PARAMS}
        user, password = self._credentials(fields)
        encoding = None
        compression_on = fields.get("enable_http_compression", "1") != "0"
        if compression_on:
            offered = [e.split(";", 1)[0].strip().lower() for e in self.headers.get("Accept-Encoding", "").split(",")]
            encoding = next((e for e in offered if e in _ENCODINGS), None)
        return _Request(user=user, password=password, sql=query_text, params=params, settings=settings,
                        database=fields.get("database") or self.headers.get("X-ClickHouse-Database") or None,
                        default_format=fields.get("default_format") or self.headers.get("X-ClickHouse-Format")
                        or "TabSeparated",
                        query_id=fields.get("query_id", ""), wait_end=fields.get("wait_end_of_query") == "1",
                        encoding=encoding, protocol_revision=_protocol_revision(fields))

    def _credentials(self, fields: dict[str, str]) -> tuple[str, str]:
        header_user = self.headers.get("X-ClickHouse-User")
        if header_user is not None:
            return header_user, self.headers.get("X-ClickHouse-Key", "")
        auth = self.headers.get("Authorization", "")
        if auth.lower().startswith("basic "):
            try:
                user, _, password = base64.b64decode(auth[6:].strip()).decode().partition(":")
            except ValueError:
                user, password = "", ""
            return user, password
        return fields.get("user", "default"), fields.get("password", "")

    def _authenticate(self, request: _Request) -> None:
        if not self.owner.credentials.matches(request.user, request.password):
            logger.info("sql_gateway_auth_failed user=%r client=%s", request.user[:64], self.client_address[0])
            raise GatewayError(AUTHENTICATION_FAILED, "AUTHENTICATION_FAILED",
                               f"{request.user}: Authentication failed: password is incorrect, or there is no user "
                               f"with such name.")

    # -- response ------------------------------------------------------------------------------

    def _answer(self, request: _Request) -> None:
        engine = self.owner.engine
        stats = QueryStats()
        with engine.handle() as handle:
            checked = engine.prepare(handle, request.sql, database=request.database, settings=request.settings,
                                     params=request.params)
            fmt = checked.format or request.default_format
            logger.info("sql_gateway_query query_id=%s user=%s format=%s", request.query_id, request.user, fmt)
            if request.wait_end or fmt not in _STREAMABLE or not checked.select:
                data = engine.run(handle, checked, fmt, request.params, stats)
                whole = _for_client(iter([data]) if data else iter(()), fmt, request.protocol_revision)
                self._send_result(request, fmt, stats, iter([b"".join(whole)]), whole=True)
            else:
                blocks = engine.stream(handle, checked, fmt, request.params, stats)
                try:
                    self._send_result(request, fmt, stats, _for_client(blocks, fmt, request.protocol_revision),
                                      whole=False)
                finally:
                    close = getattr(blocks, "close", None)
                    if close is not None:
                        close()

    def _result_headers(self, request: _Request, fmt: str, stats: QueryStats) -> None:
        self._common_headers(request.query_id)
        self.send_header("Content-Type", _CONTENT_TYPES.get(fmt, "application/octet-stream"))
        self.send_header("X-ClickHouse-Format", fmt)
        self.send_header("X-ClickHouse-Summary", json.dumps({
            "read_rows": str(stats.read_rows), "read_bytes": str(stats.read_bytes), "written_rows": "0",
            "written_bytes": "0", "total_rows_to_read": str(stats.read_rows),
            "result_bytes": str(stats.result_bytes), "elapsed_ns": str(stats.elapsed_ns)}))
        if request.encoding:
            self.send_header("Content-Encoding", request.encoding)

    def _send_result(self, request: _Request, fmt: str, stats: QueryStats, blocks: Iterator[bytes],
                     *, whole: bool) -> None:
        compressor = _compressor(request.encoding) if request.encoding else None
        if whole:
            data = b"".join(blocks)
            if compressor is not None:
                data = compressor.compress(data) + compressor.flush()
            self.send_response(200)
            self._result_headers(request, fmt, stats)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        tag = secrets.token_hex(8)
        self.send_response(200)
        self._result_headers(request, fmt, stats)
        self.send_header("X-ClickHouse-Exception-Tag", tag)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        encode: Callable[[bytes], bytes] = compressor.compress if compressor is not None else (lambda b: b)
        try:
            for block in blocks:
                self._chunk(encode(block))
        except EngineQueryError as err:
            logger.info("sql_gateway_failed_mid_stream query_id=%s code=%d", request.query_id, err.code)
            text = _error_text(err, self.owner.engine.version)
            self._chunk(encode(f"__exception__\r\n{tag}\r\n{text}{len(text)} {tag}\r\n__exception__\r\n".encode()))
        if compressor is not None:
            self._chunk(compressor.flush())
        self.wfile.write(b"0\r\n\r\n")

    def _chunk(self, data: bytes) -> None:
        if data:
            self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")

    def _common_headers(self, query_id: str) -> None:
        self.send_header("X-ClickHouse-Server-Display-Name", self.owner.display_name)
        self.send_header("X-ClickHouse-Query-Id", query_id)
        self.send_header("X-ClickHouse-Timezone", self.owner.engine.timezone)

    def _send_plain(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=UTF-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _send_error(self, err: GatewayError, query_id: str) -> None:
        by = "fence" if isinstance(err, QueryRefused) else "engine" if isinstance(err, EngineQueryError) else "gateway"
        logger.info("sql_gateway_error query_id=%s code=%d name=%s by=%s", query_id, err.code, err.name, by)
        status = _STATUS.get(err.code, 400 if err.code in _BAD_REQUEST else 500)
        body = _error_text(err, self.owner.engine.version).encode()
        try:
            self.send_response(status)
            self._common_headers(query_id)
            self.send_header("X-ClickHouse-Exception-Code", str(err.code))
            self.send_header("Content-Type", "text/plain; charset=UTF-8")
            self.send_header("Content-Length", str(len(body)))
            if status == 401:
                self.send_header("WWW-Authenticate", 'Basic realm="auditlog SQL gateway"')
            self.end_headers()
            self.wfile.write(body)
        except (ConnectionError, TimeoutError):
            logger.info("sql_gateway_client_gone query_id=%s", query_id)


def _protocol_revision(fields: dict[str, str]) -> int:
    """``client_protocol_version``: the Native layout the client reads (clickhouse-go sends 54460)."""
    text = fields.get("client_protocol_version", "0") or "0"
    if not text.isdigit():
        raise EngineQueryError(CANNOT_PARSE_NUMBER, "CANNOT_PARSE_NUMBER",
                               f"client_protocol_version must be a non-negative integer, not {text[:40]!r}")
    return int(text)


def _for_client(blocks: Iterator[bytes], fmt: str, revision: int) -> Iterator[bytes]:
    """The engine's result bytes, with Native rewritten for the client's protocol revision (native_blocks.py)."""
    if fmt != "Native" or revision == 0:
        yield from blocks
        return
    upgrade = NativeUpgrade(revision)
    try:
        for block in blocks:
            data = upgrade.feed(block)
            if data:
                yield data
        upgrade.finish()
    except UnsupportedNativeType as err:
        raise EngineQueryError(NOT_IMPLEMENTED, "NOT_IMPLEMENTED", f"Native for client protocol {revision}: {err}") \
            from err
    except ValueError as err:
        raise EngineQueryError(1001, "STD_EXCEPTION", f"Native for client protocol {revision}: {err}") from err


def _too_large() -> GatewayError:
    return GatewayError(QUERY_IS_TOO_LARGE, "QUERY_IS_TOO_LARGE",
                        f"The request body is larger than the SQL gateway accepts ({MAX_REQUEST_BYTES} bytes)")


def _error_text(err: GatewayError, version: str) -> str:
    message = err.message if err.message.endswith(".") else f"{err.message}."
    return f"Code: {err.code}. DB::Exception: {message} ({err.name}) (version {version})\n"


def _form_fields(content_type: str, body: bytes) -> dict[str, str]:
    """Plain fields of a multipart/form-data body (clickhouse-connect sends long parameters this way)."""
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + body)
    fields: dict[str, str] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if part.get_filename():
            raise EngineQueryError(NOT_IMPLEMENTED, "NOT_IMPLEMENTED",
                                   "External data (a file sent with the query) is not supported by the SQL gateway")
        if isinstance(name, str):
            payload = part.get_payload(decode=True)
            fields[name] = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else str(payload)
    return fields
