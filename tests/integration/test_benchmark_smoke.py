"""The benchmark keeps working: a tiny run of ``python -m benchmarks.run`` measures every figure.

Not a performance test (timings on a shared machine prove nothing here): it
checks that each page shape, the export, the storage, the data team's SQL and
the API load test were measured, and that both engines held the same rows and
answered every question with the same number of rows.

The benchmark runs in a child process: chDB opens one data path per process
and the benchmark brings its own, next to its own PostgreSQL server.
"""

from __future__ import annotations

import glob
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

SHAPES = {"no filter", "category", "actor substring", "rare actor", "target kind", "time window (7 d)",
          "all composed", "deep cursor (90%)", "search common term", "search rare term", "search qualifiers",
          "search + all filters"}
HAVE_POSTGRES = bool(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
needs_postgres = pytest.mark.skipif(not HAVE_POSTGRES, reason="no PostgreSQL binaries on this machine")


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], str]:
    """One tiny run for the module; without PostgreSQL binaries the ClickHouse side only (``make bench``
    installs PostgreSQL when it is missing; a test does not install packages)."""
    out = tmp_path_factory.mktemp("bench") / "result.json"
    command = [sys.executable, "-m", "benchmarks.run", "--quick", "--cold", "0", "--no-ingest", "--json", str(out)]
    if not HAVE_POSTGRES:
        command.append("--no-postgres")
    done = subprocess.run(
        command,
        capture_output=True, text=True, timeout=300, cwd=Path(__file__).resolve().parents[2],
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(out.read_text()), done.stdout


@pytest.mark.clickhouse
def test_every_generated_event_is_loaded_and_measured_on_disk(quick_run: tuple[dict[str, Any], str]) -> None:
    result, _ = quick_run
    assert result["load"]["rows"] == result["events"] == 20_000
    assert result["ch_storage"]["total_bytes"] > 0


@pytest.mark.clickhouse
def test_every_page_shape_is_measured_through_the_reader(quick_run: tuple[dict[str, Any], str]) -> None:
    result, _ = quick_run
    assert set(result["ch_pages"]) == SHAPES
    for shape, modes in result["ch_pages"].items():
        assert modes["warm"]["n"] == 5, shape
        assert modes["warm"]["p99_ms"] >= modes["warm"]["p50_ms"] > 0, shape
    assert result["ch_pages"]["no filter"]["warm"]["rows"] == 50


@pytest.mark.clickhouse
def test_export_streams_the_whole_workspace_in_both_formats(quick_run: tuple[dict[str, Any], str]) -> None:
    result, _ = quick_run
    expected = result["big_workspace_rows"]
    assert expected > 1000
    assert result["ch_export"]["jsonl"]["rows"] == expected
    assert result["ch_export"]["csv"]["rows"] == expected
    assert result["ch_export"]["jsonl"]["peak_rss_mb"] > 0


@pytest.mark.clickhouse
def test_api_load_test_serves_every_request_without_errors(quick_run: tuple[dict[str, Any], str]) -> None:
    """Three scenarios side by side: the pools, the pools with an export alongside, one shared client."""
    result, table = quick_run
    loads = result["api_load"]
    assert set(loads) == {"pools", "pools, export alongside", "one shared client (before)"}
    for name, load in loads.items():
        assert load["requests"] > 0, name
        assert load["errors"] == 0, (name, load["error_examples"])
    alongside = loads["pools, export alongside"]
    assert alongside["export_errors"] == 0 and alongside["export_mb"] > 0
    assert "export alongside" in table


@pytest.mark.clickhouse
def test_every_timeline_shape_is_measured_and_counts_the_year(quick_run: tuple[dict[str, Any], str]) -> None:
    result, table = quick_run
    timelines = result["ch_timeline"]
    assert set(timelines) >= {"timeline 1 y", "timeline, no bounds", "timeline 7 d"}
    for shape, t in timelines.items():
        assert t["n"] == 5 and t["p99_ms"] >= t["p50_ms"] > 0, shape
    # The dataset spans a year ending at the run's end: both views count the whole workspace.
    assert timelines["timeline, no bounds"]["rows"] == result["big_workspace_rows"]
    assert 0 < timelines["timeline 1 y, category"]["rows"] < timelines["timeline 1 y"]["rows"]
    assert timelines["timeline 1 y"]["bucket"] == "1w"
    assert "Activity timeline" in table


@needs_postgres
@pytest.mark.clickhouse
def test_postgres_holds_the_same_events_and_returns_the_same_pages(quick_run: tuple[dict[str, Any], str]) -> None:
    result, table = quick_run
    assert result["pg_load"]["rows"] == result["events"]
    assert result["pg_storage"]["total_bytes"] > result["pg_storage"]["table_bytes"] > 0
    assert set(result["pg_pages"]) == SHAPES
    for shape in SHAPES:
        ours, theirs = result["ch_pages"][shape]["warm"], result["pg_pages"][shape]["warm"]
        assert ours["n"] == theirs["n"] == 5, shape
        assert ours["rows"] == theirs["rows"], shape
    assert result["pg_export"]["rows"] == result["big_workspace_rows"]
    for shape, t in result["ch_timeline"].items():
        assert result["pg_timeline"][shape]["rows"] == t["rows"], shape
    assert len(result["questions"]) == 6  # three lookups by action or target, three analytic
    for name, q in result["questions"].items():
        assert q["ch_rows"] == q["pg_rows"], name
    assert "ours/PG" in table


@pytest.mark.kafka
@pytest.mark.clickhouse
def test_the_end_to_end_ingest_benchmark_stores_every_event_from_separate_producer_processes() -> None:
    """``benchmarks.consumer --end-to-end`` returns only once the table holds every produced event."""
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.consumer", "--events", "3000", "--end-to-end", "--producers", "2"],
        capture_output=True, text=True, timeout=300, cwd=Path(__file__).resolve().parents[2],
    )
    assert done.returncode == 0, done.stderr[-3000:]
    line = next(line for line in done.stdout.splitlines() if line.startswith("end to end, 2 producer processes"))
    assert "(3,000 in " in line


@pytest.mark.clickhouse
def test_the_store_benchmark_stores_every_batch_and_counts_the_merges_it_causes() -> None:
    """``benchmarks.store --settle`` times each statement, then waits for the merges and counts them."""
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.store", "--batches", "6", "--batch", "500", "--months", "1", "--settle"],
        capture_output=True, text=True, timeout=300, cwd=Path(__file__).resolve().parents[2],
    )
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    assert any(line.startswith("store alone:") and "(3,000 in " in line for line in lines), done.stdout
    assert any("a batch  command: INSERT INTO bench.events" in line for line in lines), done.stdout
    settled = next(line for line in lines if line.startswith("with the merges settled"))
    merged = float(settled.rsplit("rows merged per stored event ", 1)[1].split()[0])
    assert merged > 0, settled  # six one-month parts of each table are merged
