"""The Parquet export's own logic, against an in-memory engine that answers in Arrow.

A Parquet export's chunks are sized by the row group setting, not by the
JSONL/CSV chunk size: each becomes one row group of at most that many rows,
handed on before the next chunk is asked for, so no more than one row group
is ever held; the footer comes last, an empty export is a valid zero-row
file, and a failure leaves a prefix with no footer. The
engine's answers reuse the fake of test_export_windows.py, turned into the
Arrow stream the real engine sends.
"""

from __future__ import annotations

import io
import math
import uuid
from datetime import UTC, datetime
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.ipc as pa_ipc
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from query_api.export import (
    COLUMNS,
    PARQUET_SCHEMA,
    PARQUET_SELECT,
    EventExporter,
    ExportProgress,
    _ArrowChunk,
    to_micros,
)
from query_api.filters import EventFilters
from tests.unit.test_export_windows import MAX_US, MIN_US, FakeEngine, _expected, ids


class ArrowEngine(FakeEngine):
    """The windows fake, answering the Parquet chunk query as the engine's ArrowStream does."""

    def __init__(self, rows: list[tuple[int, uuid.UUID]], fail_at: int | None = None) -> None:
        super().__init__(rows)
        self.fail_at = fail_at
        self.rows_read = 0  # rows the exporter has been sent so far

    def raw_query(self, sql: str, parameters: dict[str, Any], fmt: str) -> bytes:
        assert fmt == "ArrowStream" and sql.startswith(f"SELECT {PARQUET_SELECT} FROM")
        if self.fail_at is not None and self.queries + 1 >= self.fail_at:
            raise ConnectionError("the engine went away")
        lines = [orjson.loads(line) for line in super().raw_query(sql, parameters, "Template").splitlines()]
        self.rows_read += len(lines)
        columns: dict[str, Any] = {c: [f"{c}-{i}" for i in range(len(lines))] for c in COLUMNS}
        columns["toString(id)"] = [row["id"] for row in lines]
        columns["occurred_at"] = [datetime.fromisoformat(row["occurred_at"]) for row in lines]
        columns["payload"] = ['{"after":{"role":"=SUM(A1)"}}'] * len(lines)  # exact, no formula quote
        table = pa.table({("toString(id)" if c == "id" else c): columns["toString(id)" if c == "id" else c]
                          for c in COLUMNS})
        table = table.set_column(2, "occurred_at", table.column("occurred_at").cast(pa.timestamp("us", tz="UTC")))
        sink = io.BytesIO()
        with pa_ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)
        return sink.getvalue()


def _parquet(rows: list[tuple[int, uuid.UUID]], chunk_rows: int, fail_at: int | None = None,
             row_group_rows: int | None = None) -> tuple[list[bytes], ArrowEngine, ExportProgress]:
    engine = ArrowEngine(rows, fail_at)
    progress = ExportProgress()
    exporter = EventExporter(engine, "t", chunk_rows=chunk_rows, row_group_rows=row_group_rows)  # type: ignore[arg-type]
    return list(exporter.chunks("ws", EventFilters(), "parquet", progress)), engine, progress


def _row_groups(parquet: pq.ParquetFile) -> list[int]:
    return [parquet.metadata.row_group(i).num_rows for i in range(parquet.metadata.num_row_groups)]


@settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(rows=st.lists(st.tuples(st.integers(min_value=MIN_US, max_value=MAX_US), ids), min_size=1, max_size=60),
       chunk_rows=st.integers(min_value=1, max_value=12), row_group_rows=st.integers(min_value=1, max_value=30))
def test_row_groups_hold_at_most_the_set_rows_in_order_and_the_file_reads_back(rows, chunk_rows, row_group_rows):
    pieces, engine, progress = _parquet(rows, chunk_rows, row_group_rows=row_group_rows)
    body = b"".join(pieces)
    parquet = pq.ParquetFile(io.BytesIO(body))
    assert parquet.schema_arrow == PARQUET_SCHEMA
    table = parquet.read()
    assert table.column("id").to_pylist() == _expected(rows)
    times = [to_micros(t) for t in table.column("occurred_at").to_pylist()]
    assert times == sorted(times, reverse=True)
    groups = _row_groups(parquet)
    assert all(0 < n <= row_group_rows for n in groups) and len(groups) <= engine.queries
    assert len(groups) >= math.ceil(len(set(rows)) / row_group_rows)
    assert progress.rows == len(set(rows)) and progress.bytes == len(body)
    assert set(table.column("payload").to_pylist()) == {'{"after":{"role":"=SUM(A1)"}}'}


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(rows=st.lists(st.tuples(st.integers(min_value=MIN_US, max_value=MAX_US), ids), min_size=1, max_size=60),
       chunk_rows=st.tuples(st.integers(min_value=1, max_value=12), st.integers(min_value=1, max_value=12)),
       row_group_rows=st.integers(min_value=1, max_value=30))
def test_the_parquet_file_depends_on_the_row_group_size_not_on_the_chunk_size(rows, chunk_rows, row_group_rows):
    one, _, _ = _parquet(rows, chunk_rows[0], row_group_rows=row_group_rows)
    other, _, _ = _parquet(rows, chunk_rows[1], row_group_rows=row_group_rows)
    assert b"".join(one) == b"".join(other)


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(rows=st.lists(st.tuples(st.integers(min_value=MIN_US, max_value=MAX_US), ids), min_size=1, max_size=80),
       chunk_rows=st.integers(min_value=1, max_value=12), row_group_rows=st.integers(min_value=1, max_value=30))
def test_rows_read_but_not_handed_on_never_exceed_one_row_group(rows, chunk_rows, row_group_rows):
    engine = ArrowEngine(rows)
    progress = ExportProgress()
    exporter = EventExporter(engine, "t", chunk_rows=chunk_rows, row_group_rows=row_group_rows)  # type: ignore[arg-type]
    for _ in exporter.chunks("ws", EventFilters(), "parquet", progress):
        # read from the engine but not yet handed on (progress counts a group once its bytes are out)
        assert engine.rows_read - progress.rows <= row_group_rows
    assert progress.rows == engine.rows_read == len(set(rows))


def test_row_groups_are_handed_on_as_they_are_written_and_the_footer_last():
    rows = [(to_micros(datetime(2026, 1, 1, tzinfo=UTC)) + i * 1_000_000, uuid.uuid4()) for i in range(25)]
    engine = ArrowEngine(rows)
    stream = EventExporter(engine, "t", chunk_rows=3, row_group_rows=5).chunks(  # type: ignore[arg-type]
        "ws", EventFilters(), "parquet")
    first = next(stream)
    assert engine.queries == 1 and len(first) > 4  # the magic and the first row group, before chunk 2 is read
    pieces = [first, *stream]
    assert engine.queries >= 5
    assert pieces[0][:4] == b"PAR1" and pieces[-1][-4:] == b"PAR1"
    assert len(pieces) >= 6  # at least one piece a row group, then the footer
    with pytest.raises(pa.ArrowInvalid):
        pq.ParquetFile(io.BytesIO(b"".join(pieces[:-1])))  # without the footer no reader opens it


def test_an_empty_export_is_a_zero_row_file_with_the_schema():
    pieces, engine, progress = _parquet([], chunk_rows=5)
    parquet = pq.ParquetFile(io.BytesIO(b"".join(pieces)))
    assert parquet.schema_arrow == PARQUET_SCHEMA and parquet.metadata.num_rows == 0
    assert engine.queries == 0 and progress.rows == 0


def test_a_failure_mid_way_raises_after_whole_row_groups_and_no_footer():
    rows = [(to_micros(datetime(2026, 1, 1, tzinfo=UTC)) + i * 1_000_000, uuid.uuid4()) for i in range(25)]
    engine = ArrowEngine(rows, fail_at=3)
    progress = ExportProgress()
    handed: list[bytes] = []
    with pytest.raises(ConnectionError):
        for piece in EventExporter(engine, "t", chunk_rows=5, row_group_rows=5).chunks(  # type: ignore[arg-type]
                "ws", EventFilters(), "parquet", progress):
            handed.append(piece)
    body = b"".join(handed)
    assert body[:4] == b"PAR1" and body[-4:] != b"PAR1" and progress.bytes == len(body)
    assert 0 < progress.rows <= 10  # the two chunks before the failure
    with pytest.raises(pa.ArrowInvalid):
        pq.ParquetFile(io.BytesIO(body))


def test_a_chunk_decodes_to_the_schema_and_its_last_row_is_exact_in_any_year():
    early = datetime(1, 1, 1, 0, 0, 0, 1, tzinfo=UTC)
    late = datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)
    the_id = uuid.uuid4()
    table = pa.table({("toString(id)" if c == "id" else c): [str(the_id) if c == "id" else c] * 2 for c in COLUMNS})
    table = table.set_column(2, "occurred_at", pa.array([late, early], pa.timestamp("us", tz="UTC")))
    sink = io.BytesIO()
    with pa_ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    chunk = _ArrowChunk.decode(sink.getvalue())
    assert chunk.table.schema == PARQUET_SCHEMA and chunk.rows == 2
    last = chunk.last()
    assert last.occurred_at == early and last.id == the_id
    assert _ArrowChunk.decode(b"").rows == 0


def test_a_row_group_size_below_one_is_refused():
    with pytest.raises(ValueError, match="row_group_rows"):
        EventExporter(ArrowEngine([]), "t", row_group_rows=0)  # type: ignore[arg-type]
