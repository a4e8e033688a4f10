"""How much an export grows the API process, for one big workspace: one command.

    .venv/bin/python -m benchmarks.export_memory --events 1000000
    .venv/bin/python -m benchmarks.export_memory --events 2000000 --again
    .venv/bin/python -m benchmarks.export_memory --events 20000000 --formats jsonl
    .venv/bin/python -m benchmarks.export_memory --events 2000000 --formats parquet --row-group-rows 50000 \
        --after-page --engine /tmp/export-mem-2m    # keeps the loaded engine for the next run

Loads ``--events`` realistic rows into one workspace of a fresh embedded
engine (``benchmarks.dataset``: a pool of generated events expanded in the
engine), then runs each export in a *fresh child process* that opens the same
engine, so every figure is a first export in a process that has done nothing
else: RSS before (VmRSS, after opening the engine and one small query), peak
during (VmHWM, reset before the export), growth = peak - before. Bytes are
counted and discarded (Parquet's too: its row groups and footer as the API sends them). Prints one
line per format and a JSON summary.

The exporter is built as the API builds it (``query_api/export_run.py``): chunk rows, engine threads
and Parquet row group rows from the settings (``AUDITLOG_API__*``), unless given here. Before
2026-11-27 evening the benchmark left the engine's default threads (2 here) while the API runs exports
with one (``export_max_threads``); ``--max-threads 0`` measures that old configuration again. With
``--after-page``, one page query (``EventReader.page``, as the API) runs first and its own growth is
``page_growth_mb``: what a first page costs, against what the export after it costs.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks import dataset, measure
from clickhouse.client import get_client
from clickhouse.migrations import migrate
from config.settings import get_settings

logger = logging.getLogger("benchmarks.export_memory")

DATABASE, TABLE = "bench", "events"


def load(path: Path, events: int) -> int:
    """``events`` rows in workspace ws_000 of a new engine at ``path``; returns the rows stored."""
    client = get_client(f"chdb://{path}")
    migrate(client, DATABASE, TABLE)
    table = f"{DATABASE}.{TABLE}"
    dataset.build_pool(client, f"{DATABASE}.pool", 1, 2000)
    end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    dataset.expand(client, table, f"{DATABASE}.pool", events, 1, 2000, end)
    client.command(f"OPTIMIZE TABLE {table} FINAL")
    client.command(f"DROP TABLE {DATABASE}.pool")
    return int(client.query(f"SELECT count() FROM {table}").result_rows[0][0])


def _breakdown(client: Any) -> dict[str, float]:
    """Where the process's memory is, MB: anonymous vs file-backed pages (shared library code paged in),
    the embedded engine's jemalloc (allocated = live, resident = pages it holds, dirty ones included),
    and pyarrow's pool (what Arrow buffers hold)."""
    import re

    import pyarrow as pa

    out = {"rss_anon_mb": measure.status_mb("RssAnon"), "rss_file_mb": measure.status_mb("RssFile"),
           "arrow_pool_peak_mb": pa.default_memory_pool().max_memory() / 2**20}
    stats = str(client.query("SELECT stats FROM system.jemalloc_stats").result_rows[0][0])
    found = re.search(r"Allocated: (\d+), active: \d+, metadata: \d+.*?resident: (\d+)", stats)
    if found:
        out["engine_allocated_mb"], out["engine_resident_mb"] = (int(v) / 2**20 for v in found.groups())
    return {k: round(v, 1) for k, v in out.items()}


def export_once(path: Path, fmt: str, args: argparse.Namespace) -> dict[str, Any]:
    """One export in this (fresh) process, as the API runs it; RSS in MB.

    With ``args.again``, a second export follows in the same process and its growth is
    ``again_growth_mb``: what an export costs once the process has paged in the code the first one used.
    """
    from query_api.export import EventExporter
    from query_api.filters import EventFilters
    from query_api.queries import EventReader

    settings = get_settings()
    api = settings.api
    chunk_rows = args.chunk_rows or api.export_chunk_rows
    row_group_rows = args.row_group_rows or api.export_parquet_row_group_rows
    threads = api.export_max_threads if args.max_threads is None else (args.max_threads or None)
    client = get_client(f"chdb://{path}", settings.clickhouse.uncompressed_cache_mb)
    client.query(f"SELECT count() FROM {DATABASE}.{TABLE} WHERE workspace_id = 'ws_000'")
    page: dict[str, float] = {}
    if args.after_page:
        before = measure.rss_mb()
        measure.rss_reset()
        EventReader(client, f"{DATABASE}.{TABLE}", api.page_max_threads).page(
            dataset.BIG_WORKSPACE, EventFilters(), 50, None)
        page = {"page_growth_mb": measure.peak_rss_mb() - before}
    exporter = EventExporter(client, f"{DATABASE}.{TABLE}", chunk_rows=chunk_rows, max_threads=threads,
                             row_group_rows=row_group_rows)
    at_start = _breakdown(client)
    result = measure.ch_export(exporter, dataset.BIG_WORKSPACE, fmt)
    result["growth_mb"] = result["peak_rss_mb"] - result["rss_before_mb"]
    at_end = _breakdown(client)
    result["breakdown_growth_mb"] = {k: v if k == "arrow_pool_peak_mb" else round(v - at_start[k], 1)
                                     for k, v in at_end.items() if k in at_start}
    result.update(page, chunk_rows=chunk_rows, max_threads=threads or "engine default",
                  row_group_rows=row_group_rows if fmt == "parquet" else None)
    if args.again:
        second = measure.ch_export(exporter, dataset.BIG_WORKSPACE, fmt)
        result["again_growth_mb"] = second["peak_rss_mb"] - second["rss_before_mb"]
    return result


def _child(workdir: Path, what: str, args: argparse.Namespace) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "benchmarks.export_memory", "--child", f"{workdir / 'chdb'}|{what}",
           "--events", str(args.events)]
    for flag, value in (("--chunk-rows", args.chunk_rows), ("--row-group-rows", args.row_group_rows),
                        ("--max-threads", args.max_threads)):
        if value is not None:
            cmd += [flag, str(value)]
    cmd += [flag for flag, on in (("--again", args.again), ("--after-page", args.after_page)) if on]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{what} failed: {proc.stderr[-2000:]}")
    parsed: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return parsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--formats", default="jsonl,csv,parquet")
    parser.add_argument("--chunk-rows", type=int, default=None, help="default: the API's setting")
    parser.add_argument("--row-group-rows", type=int, default=None, help="Parquet; default: the API's setting")
    parser.add_argument("--max-threads", type=int, default=None,
                        help="engine threads of a chunk query; default: the API's setting; 0: the engine's default")
    parser.add_argument("--after-page", action="store_true",
                        help="run one page query first and report its own growth (page_growth_mb)")
    parser.add_argument("--again", action="store_true",
                        help="also measure a second export in the same process (again_growth_mb)")
    parser.add_argument("--workdir", default=None, help="where the temporary engine goes (default: /tmp)")
    parser.add_argument("--engine", default=None,
                        help="keep the loaded engine in this folder and reuse it on the next run with the same"
                             " --events (loading 2M rows takes minutes); default: a temporary one, removed")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)  # "<path>|<format>" or "<path>|load"
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s",
                        stream=sys.stderr)
    if args.child:  # one engine path per process: loading and each export run in children
        path, fmt = args.child.split("|")
        out = {"rows": load(Path(path), args.events)} if fmt == "load" else export_once(Path(path), fmt, args)
        print(json.dumps(out))  # noqa: T201 - read by the parent
        return 0
    keep = args.engine is not None
    workdir = Path(args.engine) if keep else Path(tempfile.mkdtemp(prefix="auditlog-export-mem-", dir=args.workdir))
    summary: dict[str, Any] = {"date": datetime.now(UTC).isoformat(timespec="seconds"),
                               "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
                               "events": args.events, "exports": {}}
    try:
        t0 = time.perf_counter()
        loaded = workdir / f"loaded-{args.events}"
        if keep and loaded.exists():
            summary["rows_stored"] = int(loaded.read_text())
        else:
            if keep and any(workdir.glob("loaded-*")):
                raise SystemExit(f"{workdir} holds an engine loaded with another --events; use another --engine")
            summary["rows_stored"] = _child(workdir, "load", args)["rows"]
            summary["load_s"] = round(time.perf_counter() - t0, 1)
            if keep:
                loaded.write_text(str(summary["rows_stored"]))
        for fmt in args.formats.split(","):
            result = _child(workdir, fmt, args)
            summary["exports"][fmt] = result
            print(f"{fmt}: {result['rows']:,} rows, {result['rows_per_s']:,.0f} rows/s, RSS before "  # noqa: T201
                  f"{result['rss_before_mb']:.0f} MB, peak {result['peak_rss_mb']:.0f} MB, "
                  f"growth {result['growth_mb']:.0f} MB (chunk {result['chunk_rows']:,} rows, threads "
                  f"{result['max_threads']}"
                  + (f", row groups {result['row_group_rows']:,} rows" if result["row_group_rows"] else "") + ")"
                  + (f", after a first page of +{result['page_growth_mb']:.0f} MB" if args.after_page else "")
                  + (f", a second export +{result['again_growth_mb']:.0f} MB" if args.again else "")
                  + "; at the end, MB above the start: "
                  + ", ".join(f"{k.removesuffix('_mb')} {v:+.1f}" for k, v in result["breakdown_growth_mb"].items())
                  + "; RSS over the export (rows: MB above the start) "
                  + ", ".join(f"{int(r):,}: {mb:+.0f}" for r, mb in result["growth_by_rows"].items()),
                  flush=True)
    finally:
        if not keep:
            shutil.rmtree(workdir, ignore_errors=True)
    print(json.dumps(summary, indent=2))  # noqa: T201 - the command's output
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
