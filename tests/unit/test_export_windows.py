"""The export's window plan, against an in-memory engine: every history gives every row once, in order.

The fake engine answers the exporter's two queries from a list of
(occurred_at, id) rows the way the real one does (the stats query; a chunk =
rows at or after ``lo`` and before the keyset position, copies collapsed,
newest first, ``LIMIT n``), so these properties exercise the real window
arithmetic and the read-back of each chunk's last row. The same property on
the real engine is tests/integration/test_export_windows.py.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from query_api.export import EventExporter, ExportProgress, ExportWindows, count_rows, from_micros, to_micros
from query_api.filters import EventFilters

MIN_US = to_micros(datetime(1900, 1, 1, tzinfo=UTC))
MAX_US = to_micros(datetime(2299, 12, 31, 23, 59, 59, 999999, tzinfo=UTC))


@dataclass
class _Result:
    result_rows: list[list[Any]]


def _us(text: str) -> int:
    return to_micros(datetime.strptime(text, "%Y-%m-%d %H:%M:%S.%f").replace(tzinfo=UTC))


class FakeEngine:
    """Holds (micros, uuid) rows, copies allowed; answers the exporter's SQL by its parameters."""

    def __init__(self, rows: list[tuple[int, uuid.UUID]]) -> None:
        self.rows = rows
        self.queries = 0

    def query(self, sql: str, parameters: dict[str, Any]) -> _Result:
        times = [t for t, _ in self.rows]
        if not times:
            return _Result([[0, 0, 0, "2026-01-01 00:00:00.000"]])
        return _Result([[len(times), min(times), max(times), "2026-01-01 00:00:00.000"]])

    def raw_query(self, sql: str, parameters: dict[str, Any], fmt: str) -> bytes:
        self.queries += 1
        match = re.search(r"LIMIT (\d+) SETTINGS", sql)
        assert match is not None and fmt == "Template"
        limit = int(match.group(1))
        lo = _us(parameters["lo"])
        after = (_us(parameters["after_t"]), uuid.UUID(parameters["after_id"])) if "after_t" in parameters else None
        picked = sorted({(t, i) for t, i in self.rows
                         if t >= lo and (after is None or (t, i.int) < (after[0], after[1].int))},
                        key=lambda r: (r[0], r[1].int), reverse=True)[:limit]
        return b"".join(orjson.dumps({"id": str(i), "occurred_at": from_micros(t).isoformat().replace("+00:00", "Z")})
                        + b"\n" for t, i in picked)


def _export(rows: list[tuple[int, uuid.UUID]], chunk_rows: int) -> tuple[list[str], FakeEngine, ExportProgress]:
    engine = FakeEngine(rows)
    progress = ExportProgress()
    exporter = EventExporter(engine, "t", chunk_rows=chunk_rows)  # type: ignore[arg-type]
    body = b"".join(exporter.chunks("ws", EventFilters(), "jsonl", progress))
    return [orjson.loads(line)["id"] for line in body.splitlines()], engine, progress


def _expected(rows: list[tuple[int, uuid.UUID]]) -> list[str]:
    return [str(i) for _, i in sorted(set(rows), key=lambda r: (r[0], r[1].int), reverse=True)]


times = st.integers(min_value=MIN_US, max_value=MAX_US)
ids = st.builds(lambda n: uuid.UUID(int=n), st.integers(min_value=1, max_value=(1 << 128) - 1))


@st.composite
def histories(draw: st.DrawFn) -> list[tuple[int, uuid.UUID]]:
    """Spread rows, bursts at one instant, clusters centuries apart, and copies of stored rows."""
    rows = draw(st.lists(st.tuples(times, ids), min_size=1, max_size=60))
    for _ in range(draw(st.integers(0, 3))):  # a burst: many rows at one instant
        at = draw(times)
        rows += [(at, draw(ids)) for _ in range(draw(st.integers(1, 30)))]
    for _ in range(draw(st.integers(0, 3))):  # a cluster: rows a few microseconds apart
        at = draw(st.integers(MIN_US, MAX_US - 100))
        rows += [(at + draw(st.integers(0, 100)), draw(ids)) for _ in range(draw(st.integers(1, 20)))]
    copies = draw(st.lists(st.sampled_from(rows), max_size=10))  # not merged yet
    return rows + copies


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=histories(), chunk_rows=st.integers(min_value=1, max_value=50))
def test_the_windowed_export_is_the_plain_sort_in_order_each_row_once(rows, chunk_rows):
    exported, engine, progress = _export(rows, chunk_rows)
    assert exported == _expected(rows)
    assert progress.rows == len(exported)
    # Full chunks plus windows: the empty stretches cost a logarithmic number of queries, not one per gap.
    assert engine.queries <= 2 * (len(exported) // chunk_rows + 1) + 4 * 60 + 10


@pytest.mark.parametrize(
    ("history", "chunk_rows"),
    [
        ([datetime(2026, 3, 1, tzinfo=UTC)], 1),  # one event
        ([datetime(2026, 3, 1, tzinfo=UTC)], 50_000),
        ([datetime(1900, 1, 1, tzinfo=UTC), datetime(2299, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)], 50_000),
        ([datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 2, 8, tzinfo=UTC)], 50_000),  # 2 events 38 days apart
        ([datetime(2025, 1, 1, tzinfo=UTC).replace(day=1 + d % 28, month=1 + d % 12) for d in range(10)], 50_000),
    ],
)
def test_small_and_quiet_workspaces_export_every_event(history, chunk_rows):
    rows = [(to_micros(t), uuid.uuid4()) for t in history]
    exported, _, _ = _export(rows, chunk_rows)
    assert exported == _expected(rows)


def test_an_empty_history_exports_nothing():
    assert _export([], 10)[0] == []


@given(oldest=times, width=st.integers(0, MAX_US - MIN_US), count=st.integers(1, 10**9),
       chunk=st.integers(1, 10**6), found=st.lists(st.integers(0, 10**6), max_size=40))
def test_windows_never_leave_the_history_whatever_the_density(oldest, width, count, chunk, found):
    newest = min(oldest + width, MAX_US)
    windows = ExportWindows(oldest, newest, count, chunk)
    for rows in found:
        lower = windows.lower()
        assert oldest <= lower < windows.top <= newest + 1
        from_micros(lower)  # representable
        if windows.window_done(lower, rows):
            break


def test_csv_rows_are_counted_by_records_not_line_ends():
    chunk = b'"a","x\n""y"""\n"b","\n"\n"c","plain"\n'
    assert count_rows(chunk, "csv") == 3
    assert count_rows(b'{"a":1}\n{"a":2}\n', "jsonl") == 2
