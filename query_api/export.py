"""The export: the whole filtered history as JSONL or CSV bytes, streamed in bounded chunks.

Why it is built this way (the measurements are in docs/performance.md, "Export"):

- The engine writes every byte. JSONL uses the ``Template`` format with a
  per-column escaping rule (``${col:JSON}``, ``${payload:Raw}``), so each
  line is written straight from the stored columns: no ``concat`` of ~30
  ``toJSONString`` calls building a second copy of every line first.
  ``date_time_output_format='iso'`` prints ``occurred_at`` as ISO UTC with
  microseconds and ``Z``, the shape EventOut has. The lines are byte for byte
  those of the former ``concat`` query.
- One query per chunk, no boundary query: a chunk is ``LIMIT n`` rows after
  a keyset position, and the next position is read back from the chunk's
  last row (one line parsed per chunk).
- Copies the ReplacingMergeTree has not merged yet share (occurred_at, id)
  and are adjacent in the order; ``LIMIT 1 BY`` collapses them inside a
  chunk, and the strict keyset condition keeps a copy of a chunk's last row
  out of the next chunk.
- The windows are planned in integer microseconds (``ExportWindows``), never
  by datetime arithmetic: one event, two events centuries apart, bursts and
  long gaps all give windows inside [oldest, newest], for any chunk size.
- Snapshot: the first query fixes the engine's clock (``now64(3)``) and every
  chunk reads only rows ingested up to it (``ingested_at <= taken_at``), so
  events arriving during an export are left for the next one. (A late copy of
  an event that merges with the stored one before its window is read carries
  the copy's later ``ingested_at`` and is then missing from that export; a
  copy is rare, the merge within the export's seconds rarer.)
- Memory is bounded by the chunk: the engine's formatted chunk plus its
  copy as Python bytes, whatever the history size. The chunk is handed on
  in pieces of ``piece_bytes`` so the HTTP layer never buffers a whole chunk.
- CSV is safe to open in a spreadsheet (OWASP, CSV injection): every field
  is quoted, and a text field that starts with ``=``, ``+``, ``-``, ``@``, a
  tab or a carriage return gets a leading ``'`` in the engine's SELECT.
  JSONL and Parquet are exact.
- Parquet: the same window plan and chunk queries, each chunk read from the
  engine as Arrow (``ArrowStream``, zero-copy over the engine's bytes) and
  written at once as **one row group** by one ``ParquetWriter`` into a sink
  that is drained after every row group, so the bytes leave as they are
  made; the footer comes last. A Parquet export's chunks have their own
  size, ``row_group_rows`` (``AUDITLOG_API__EXPORT_PARQUET_ROW_GROUP_ROWS``),
  not the JSONL/CSV ``chunk_rows``: every row group holds at most that many
  rows (about 0.8x on average: the window plan aims a window at 80% of a
  chunk). Row groups of exactly that size were built and measured (chunks
  gathered as Arrow until a group is full; or each chunk query capped at
  the rows its group still needs) and not kept: holding rows across engine
  queries grew the first export by ~+15-25 MB more and made it 30-50 %
  slower (docs/performance.md, "Parquet row groups"). One chunk is alive at
  a time. The writer keeps every row group's metadata until the footer
  (~14 KB in memory, ~2 KB in the footer, per group), so small row groups
  cost memory on long exports; hence the setting's floor. ``PARQUET_SCHEMA``
  is fixed, so an empty export is a valid file with zero rows. Without its
  footer (a failed export) no Parquet reader opens the file.

Settings ride inline in the SQL (``SETTINGS ...``): per-call settings make
the embedded engine's client snapshot, set and restore them around every
query.
"""

from __future__ import annotations

import csv
import logging
import math
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import accumulate
from operator import xor
from typing import Any, Literal, Protocol, TypeVar, get_args

import orjson
import pyarrow as pa
import pyarrow.ipc as pa_ipc
import pyarrow.parquet as pq
from clickhouse_connect.driver.client import Client

from clickhouse.events import as_utc as _as_utc
from clickhouse.pool import ClientSource
from query_api.cursor import Position
from query_api.filters import EventFilters
from query_api.queries import build_where, ch_time, client_source

logger = logging.getLogger(__name__)

ExportFormat = Literal["jsonl", "csv", "parquet"]
EXPORT_FORMATS: tuple[ExportFormat, ...] = get_args(ExportFormat)

# Column order of the CSV (and its header); the JSONL template names the same columns.
COLUMNS = (
    "id", "workspace_id", "occurred_at", "action", "category", "actor_kind", "actor_id", "actor_display",
    "target_kind", "target_id", "target_display", "payload", "ip", "user_agent", "request_id", "service",
)
CSV_HEADER = (",".join(f'"{c}"' for c in COLUMNS) + "\n").encode()
# A spreadsheet reads a cell that starts with one of these as a formula (OWASP); the export prefixes a quote.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_TEXT_COLUMNS = frozenset(COLUMNS) - {"id", "occurred_at"}
_FORMULA_SQL = ", ".join("'" + c.replace("\t", "\\t").replace("\r", "\\r") + "'" for c in FORMULA_STARTS)
CSV_SELECT = ", ".join(
    # No alias: an alias named like a column would replace that column in the WHERE clause.
    f"if(substring({c}, 1, 1) IN ({_FORMULA_SQL}), concat('\\'', {c}), toString({c}))"
    if c in _TEXT_COLUMNS else c
    for c in COLUMNS
)

# One JSON object a line with EventOut's keys and nesting; payload is stored JSON text, written as is.
JSONL_ROW = (
    '{"id":${id:JSON},"workspace_id":${workspace_id:JSON},"occurred_at":${occurred_at:JSON},'
    '"action":${action:JSON},"category":${category:JSON},'
    '"actor":{"kind":${actor_kind:JSON},"id":${actor_id:JSON},"display":${actor_display:JSON}},'
    '"target":{"kind":${target_kind:JSON},"id":${target_id:JSON},"display":${target_display:JSON}},'
    '"payload":${payload:Raw},'
    '"context":{"ip":${ip:JSON},"user_agent":${user_agent:JSON},"request_id":${request_id:JSON},'
    '"service":${service:JSON}}}'
)
# Read-ahead buffering of the in-order read holds blocks of every part at once; without it the read
# streams. Every chunk query has its own constants (window, position), so the engine's compiled-expression
# and query-condition caches would keep an entry per chunk for the process's life (docs/performance.md,
# "Export", has both measured).
_ISO = ("date_time_output_format = 'iso', read_in_order_use_buffering = 0, compile_expressions = 0,"
        " use_query_condition_cache = 0")
# Parquet's columns: the export's, with the id as its text and the payload as its JSON text.
PARQUET_SCHEMA = pa.schema(
    [pa.field("id", pa.string(), nullable=False), pa.field("workspace_id", pa.string(), nullable=False),
     pa.field("occurred_at", pa.timestamp("us", tz="UTC"), nullable=False)]
    + [pa.field(c, pa.string(), nullable=False) for c in COLUMNS[3:]]
)
# The engine names an unaliased column by its expression; the chunk's columns are renamed to COLUMNS.
PARQUET_SELECT = ", ".join("toString(id)" if c == "id" else c for c in COLUMNS)
# Arrow for Parquet: strings as strings, no dictionaries, and no compression of the stream (in process lz4
# only costs time and memory: a first export of 1M rows grew the process by +176 MB with it, +127 without;
# docs/performance.md, "Parquet").
_ARROW = ("output_format_arrow_string_as_string = 1, output_format_arrow_low_cardinality_as_dictionary = 0,"
          " output_format_arrow_compression_method = 'none',"
          " read_in_order_use_buffering = 0, compile_expressions = 0, use_query_condition_cache = 0")
# Statistics (min/max a row group) where a reader can prune with them; not for long free text.
_PARQUET_STATISTICS = [c for c in COLUMNS if c not in ("payload", "user_agent", "actor_display", "target_display")]
_SETTINGS: dict[str, tuple[str, str, str]] = {
    # format -> (select list, engine output format, inline settings); "\\n" is the SQL escape of a newline.
    "jsonl": (", ".join(COLUMNS), "Template", f"{_ISO}, format_template_row_format = '{JSONL_ROW}\\n',"
                                               " format_template_rows_between_delimiter = ''"),
    "csv": (CSV_SELECT, "CSV", _ISO),
    "parquet": (PARQUET_SELECT, "ArrowStream", _ARROW),
}

# Measured on 1M rows of one workspace (benchmarks/export_memory.py, docs/performance.md): 50k-row chunks
# grew the process by 273 MB (JSONL) / 219 MB (CSV), 10k-row chunks by 87 / 85 MB at the same JSONL
# speed; the chunk bounds the memory, not the history.
DEFAULT_CHUNK_ROWS = 10_000
# Parquet row groups (= a Parquet export's chunks): the settings' AUDITLOG_API__EXPORT_PARQUET_ROW_GROUP_ROWS;
# None here means the chunk size.
DEFAULT_ROW_GROUP_ROWS: int | None = None
_FILL = 0.8
# With the keyset condition "before (t, id)", this id means "before t": no UUID is smaller.
_BEFORE_ALL_IDS = uuid.UUID(int=0)
DEFAULT_PIECE_BYTES = 1 << 20
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def from_micros(micros: int) -> datetime:
    """The UTC moment ``micros`` microseconds after the epoch (exact: no float on the way)."""
    return _EPOCH + timedelta(microseconds=micros)


@dataclass
class ExportProgress:
    """What an export has handed on so far; the route records it whether the export completes or fails."""

    rows: int = 0
    bytes: int = 0


@dataclass(frozen=True)
class Snapshot:
    """What the export covers: matching rows ingested up to ``taken_at`` (the engine's clock)."""

    count: int
    oldest_us: int
    newest_us: int
    taken_at: str


class ExportWindows:
    """The export's time windows, newest first, planned in integer microseconds.

    A window is [lower, top): ``lower(top)`` places the next one below ``top``
    and never below the oldest row; its span starts at what should hold a
    little less than a chunk at the history's mean density and adapts to each
    window's density (x0.5 .. x4; an empty window, a gap, always widens the
    next). The span stays between 1 µs and the whole history, so no value ever
    leaves the history's own range: no overflow, whatever the history or the
    chunk size. Correctness does not depend on the span, only termination
    speed does (every window is read to its end before the next).
    """

    def __init__(self, oldest_us: int, newest_us: int, count: int, chunk_rows: int) -> None:
        if count < 1 or chunk_rows < 1 or newest_us < oldest_us:
            raise ValueError("an export plan needs at least one row, a positive chunk and oldest <= newest")
        self.oldest = oldest_us
        self.top = newest_us + 1  # exclusive
        self._history = newest_us - oldest_us + 1
        self._chunk = chunk_rows
        self.span = self._clamp(math.ceil(self._history * (_FILL * chunk_rows / count)))

    def _clamp(self, span: float | int) -> int:
        return int(min(max(span, 1), self._history))

    def lower(self) -> int:
        """The lower bound (inclusive) of the window below ``top``."""
        return max(self.top - self.span, self.oldest)

    def window_done(self, lower: int, rows: int) -> bool:
        """Record that [lower, top) held ``rows``; True when that was the oldest window."""
        if lower <= self.oldest:
            return True
        self.top = lower
        growth = min(max(_FILL * self._chunk / rows, 0.5), 4.0) if rows else 4.0
        self.span = self._clamp(self.span * growth)
        return False


class ExportError(RuntimeError):
    """A chunk's last row could not be read back, so the export cannot safely go on."""


class _Chunk(Protocol):
    """One chunk query's answer: its rows, and where the next chunk starts when it was full."""

    @property
    def rows(self) -> int: ...

    def last(self) -> Position: ...


_C = TypeVar("_C", bound=_Chunk)


@dataclass(frozen=True)
class _TextChunk:
    """A JSONL or CSV chunk as the engine formatted it."""

    data: bytes
    fmt: str
    rows: int

    @classmethod
    def decode(cls, data: bytes, fmt: str) -> _TextChunk:
        return cls(data, fmt, count_rows(data, fmt))

    def last(self) -> Position:
        return _last_position(self.data, self.fmt)


@dataclass(frozen=True)
class _ArrowChunk:
    """A chunk read from the engine's Arrow stream, in ``PARQUET_SCHEMA``."""

    table: pa.Table

    @classmethod
    def decode(cls, data: bytes) -> _ArrowChunk:
        """The chunk's table, columns renamed to ``COLUMNS`` and cast to ``PARQUET_SCHEMA``.

        An empty chunk may come back as no bytes at all, or as a stream with no batch.
        """
        if not data:
            return cls(PARQUET_SCHEMA.empty_table())
        try:
            table = pa_ipc.open_stream(data).read_all()
            return cls(table.rename_columns(list(COLUMNS)).cast(PARQUET_SCHEMA))
        except (pa.ArrowException, ValueError) as err:
            raise ExportError("the export chunk could not be read as Arrow") from err

    @property
    def rows(self) -> int:
        return int(self.table.num_rows)

    def last(self) -> Position:
        micros = self.table.column("occurred_at")[-1].value  # integer microseconds: no datetime range limit
        return Position(from_micros(int(micros)), uuid.UUID(str(self.table.column("id")[-1].as_py())))


class _DrainingSink:
    """A write-only file for ``ParquetWriter`` whose bytes are taken out after each row group.

    ``discard()`` drops what is written afterwards (a failed export's writer, closed by the
    garbage collector, writes its footer into nothing).
    """

    closed = False

    def __init__(self) -> None:
        self._parts: list[bytes] = []
        self._discarding = False

    def write(self, data: bytes | memoryview) -> int:
        if not self._discarding:
            self._parts.append(bytes(data))
        return len(data)

    def flush(self) -> None:
        """Nothing is buffered here beyond what ``drain`` takes."""

    def close(self) -> None:
        self.closed = True

    def drain(self) -> bytes:
        """Everything written since the last drain."""
        data = b"".join(self._parts)
        self._parts.clear()
        return data

    def discard(self) -> None:
        self._discarding = True
        self._parts.clear()


class EventExporter:
    """Streams one workspace's filtered history, newest first, one row per event.

    The rows equal all pages of the list endpoint concatenated (same filters,
    same order, copies collapsed), as of the export's start (``Snapshot``). A
    failure mid-way raises from the iterator; the bytes already handed on are
    a prefix of the full export, whole rows only, counted in the progress.
    """

    def __init__(self, source: ClientSource | Client, table: str, chunk_rows: int = DEFAULT_CHUNK_ROWS,
                 piece_bytes: int = DEFAULT_PIECE_BYTES, max_threads: int | None = None,
                 row_group_rows: int | None = DEFAULT_ROW_GROUP_ROWS) -> None:
        if chunk_rows < 1 or piece_bytes < 1:
            raise ValueError("chunk_rows and piece_bytes must be positive")
        if row_group_rows is not None and row_group_rows < 1:
            raise ValueError("row_group_rows must be positive")
        if max_threads is not None and max_threads < 1:
            raise ValueError("max_threads must be positive")
        # Each chunk query leases a client for itself alone: between chunks (while the bytes go out
        # to a slow client) the export holds no engine handle.
        self._source = client_source(source)
        self._threads = "" if max_threads is None else f", max_threads = {int(max_threads)}"
        self._query_settings: dict[str, Any] = {} if max_threads is None else {
            "settings": {"max_threads": int(max_threads)}}
        self._table = table
        self._chunk_rows = int(chunk_rows)
        self._row_group_rows = int(row_group_rows) if row_group_rows is not None else self._chunk_rows
        self._piece_bytes = int(piece_bytes)

    def snapshot(self, workspace_id: str, filters: EventFilters) -> Snapshot:
        """Count and time range of the matching rows as of now, and the engine's "now" that fixes them."""
        stats = build_where(workspace_id, filters)
        with self._source.lease() as client:
            count, oldest, newest, taken_at = client.query(
                "WITH now64(3, 'UTC') AS taken"
                " SELECT count(), toUnixTimestamp64Micro(min(occurred_at)), toUnixTimestamp64Micro(max(occurred_at)),"
                f" toString(any(taken)) FROM {self._table} WHERE {stats.where} AND ingested_at <= taken",
                parameters=stats.parameters, **self._query_settings,
            ).result_rows[0]
        return Snapshot(int(count), int(oldest), int(newest), str(taken_at))

    def chunks(self, workspace_id: str, filters: EventFilters, fmt: ExportFormat | str,
               progress: ExportProgress | None = None, snapshot: Snapshot | None = None) -> Iterator[bytes]:
        """The export's bytes in pieces of at most ``piece_bytes``; CSV starts with its header.

        Args:
            workspace_id: the workspace to export.
            filters: the list endpoint's filters.
            fmt: ``jsonl``, ``csv`` or ``parquet``.
            progress: counts the rows and bytes handed on (rows are whole: a chunk, or for Parquet a row
                group, is handed on whole).
            snapshot: ``snapshot()`` taken before (so that a failing engine fails before the first byte);
                taken here when not given.

        Raises:
            ValueError: an unknown format.
            ExportError: a chunk whose last row cannot be read back (never expected).
            clickhouse_connect's errors: the engine failed; what was handed on is a prefix (for Parquet:
                whole row groups and no footer).
        """
        if fmt not in _SETTINGS:
            raise ValueError(f"unknown export format {fmt!r}")
        progress = progress if progress is not None else ExportProgress()
        if fmt == "parquet":
            yield from self._parquet(workspace_id, filters, progress, snapshot)
            return
        if fmt == "csv":
            progress.bytes += len(CSV_HEADER)
            yield CSV_HEADER
        for chunk in self._read(workspace_id, filters, fmt, snapshot, lambda data: _TextChunk.decode(data, fmt)):
            if chunk.data:
                yield from self._pieces(chunk.data)
                progress.rows += chunk.rows
                progress.bytes += len(chunk.data)

    def _parquet(self, workspace_id: str, filters: EventFilters, progress: ExportProgress,
                 snapshot: Snapshot | None) -> Iterator[bytes]:
        """One Parquet file: the magic, the row groups (each handed on as soon as it is written), the footer."""
        sink = _DrainingSink()
        writer = pq.ParquetWriter(sink, PARQUET_SCHEMA, compression="zstd", write_statistics=_PARQUET_STATISTICS)
        try:
            for chunk in self._read(workspace_id, filters, "parquet", snapshot, _ArrowChunk.decode,
                                    self._row_group_rows):
                rows = chunk.rows
                if rows:
                    writer.write_table(chunk.table, row_group_size=rows)  # one row group
                del chunk  # its Arrow buffers (and the engine's bytes under them) go before the next read
                yield from self._drained(sink, progress, rows)
            writer.close()
            yield from self._drained(sink, progress, 0)
        finally:
            sink.discard()  # a failed export's writer closes into nothing: no footer is ever handed on

    def _drained(self, sink: _DrainingSink, progress: ExportProgress, rows: int) -> Iterator[bytes]:
        data = sink.drain()
        if data:
            yield from self._pieces(data)
        progress.rows += rows
        progress.bytes += len(data)

    def _read(self, workspace_id: str, filters: EventFilters, fmt: str, snapshot: Snapshot | None,
              decode: Callable[[bytes], _C], chunk_rows: int | None = None) -> Iterator[_C]:
        """Every chunk of the export, newest first, as ``decode`` reads the engine's output of it.

        ``chunk_rows``: the rows of a chunk when not the exporter's (Parquet: its row group size).
        """
        limit = chunk_rows or self._chunk_rows
        select, engine_fmt, settings = _SETTINGS[fmt]
        snap = snapshot if snapshot is not None else self.snapshot(workspace_id, filters)
        if not snap.count:
            return
        windows = ExportWindows(snap.oldest_us, snap.newest_us, snap.count, limit)
        after: Position | None = None
        while True:
            lower = windows.lower()
            query = build_where(workspace_id, filters, after)
            sql = (
                f"SELECT {select} FROM {self._table}"
                f" WHERE {query.where} AND occurred_at >= {{lo:DateTime64(6, 'UTC')}}"
                " AND ingested_at <= {taken:DateTime64(3, 'UTC')}"
                f" ORDER BY occurred_at DESC, id DESC LIMIT 1 BY occurred_at, id LIMIT {limit}"
                f" SETTINGS {settings}{self._threads}"
            )
            params = {**query.parameters, "lo": ch_time(from_micros(lower)), "taken": snap.taken_at}
            with self._source.lease() as client:
                data = client.raw_query(sql, parameters=params, fmt=engine_fmt)
            chunk = decode(data)
            del data
            rows = chunk.rows
            last = chunk.last() if rows >= limit else None
            yield chunk
            del chunk  # not held while the next chunk is read: one chunk in memory at a time
            if last is not None:
                after = last  # the window holds more: go on from the last row
                windows.top = to_micros(after.occurred_at)
                continue
            if windows.window_done(lower, rows):
                return
            after = Position(from_micros(lower), _BEFORE_ALL_IDS)  # the next window ends where this began

    def _pieces(self, data: bytes) -> Iterator[bytes]:
        if len(data) <= self._piece_bytes:
            yield data
            return
        view = memoryview(data)
        for start in range(0, len(data), self._piece_bytes):
            yield bytes(view[start:start + self._piece_bytes])


def to_micros(moment: datetime) -> int:
    """Microseconds since the epoch, exact."""
    delta = _as_utc(moment) - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def count_rows(data: bytes, fmt: str) -> int:
    """The rows in a formatted chunk: JSONL has one line each; a CSV field may hold line ends.

    The engine quotes every CSV field and doubles quotes inside them, so a
    line end ends a record exactly when an even number of quotes precede it
    in the chunk (which starts at a record's start).
    """
    if fmt != "csv":
        return data.count(b"\n")
    odd = [line.count(b'"') & 1 for line in data.split(b"\n")[:-1]]
    return list(accumulate(odd, xor)).count(0)


def _last_position(data: bytes, fmt: str) -> Position:
    """The (occurred_at, id) of a chunk's last row, where the next chunk starts after."""
    try:
        if fmt == "jsonl":
            # JSON escaping leaves no raw line end inside a line.
            line = data[data.rfind(b"\n", 0, len(data) - 1) + 1:]
            row = orjson.loads(line)
            return Position(datetime.fromisoformat(row["occurred_at"]), uuid.UUID(row["id"]))
        fields = next(csv.reader([_last_csv_record(data).decode()]))
        return Position(datetime.fromisoformat(fields[2]), uuid.UUID(fields[0]))
    except (ValueError, KeyError, IndexError, StopIteration, orjson.JSONDecodeError) as err:
        raise ExportError("the export chunk's last row could not be read back") from err


def _last_csv_record(data: bytes) -> bytes:
    """The last CSV record of a chunk, which may span lines inside quoted fields.

    The engine quotes every string and doubles quotes inside them, so a line
    end starts a record only if an even number of quotes follows it.
    """
    end = len(data) - 1  # the record's own line end
    start = data.rfind(b"\n", 0, end)
    while start != -1 and data.count(b'"', start + 1, end) % 2:
        start = data.rfind(b"\n", 0, start)
    return data[start + 1:end]
