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
    result, _ = quick_run
    load = result["api_load"]
    assert load["requests"] > 0
    assert load["errors"] == 0, load["error_examples"]


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
