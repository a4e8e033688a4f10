"""``make bench``: the embedded ClickHouse engine next to a PostgreSQL audit table, one run, one table.

    python -m benchmarks.run                      # 10M events over 100 workspaces
    python -m benchmarks.run --events 100000000   # the long run
    python -m benchmarks.run --quick              # tiny dataset, seconds (the smoke test uses it)

Everything is measured in this run on this machine: the dataset is generated,
loaded into a fresh chDB path and (the same rows, through CSV and COPY) into a
PostgreSQL server started on loopback for the occasion; page latencies cold
and warm, export, storage, the data team's SQL, the API under load, and the
ingest figures of ``benchmarks.consumer`` when it is present. Prints a table
with the ratio ours / PostgreSQL for every figure and, with ``--json``, writes
every number.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks import dataset, measure
from benchmarks.api_load import load_scenarios
from benchmarks.postgres import PostgresServer, load, storage
from benchmarks.report import comparison, render
from benchmarks.shapes import build_shapes, build_timeline_shapes
from clickhouse.client import get_client
from clickhouse.migrations import migrate
from clickhouse.summaries import refresh_summaries
from config.settings import Settings
from query_api.export import EventExporter
from query_api.queries import EventReader
from query_api.timeline import TimelineReader

logger = logging.getLogger("benchmarks.run")

DATABASE = "bench"
TABLE = "events"
# The latest full run, the default to print every figure next to (make bench at 21f0e10, 10M events, 2 cores,
# AMD EPYC host). Sessions land on different hosts: compare with a reference from the same one
# (--compare FILE; the 2026-11-27 run at 3c30088 was on another).
REFERENCE = Path(__file__).parent / "reference" / "2026-12-07-21f0e10-10m.json"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.split("\n\n")[0])
    p.add_argument("--events", type=int, default=10_000_000)
    p.add_argument("--workspaces", type=int, default=100)
    p.add_argument("--pool-per-workspace", type=int, default=3000,
                   help="realistic events generated per workspace, drawn from to build the rows")
    p.add_argument("--warm", type=int, default=None, help="warm samples per page shape (default 100)")
    p.add_argument("--cold", type=int, default=None, help="cold samples per page shape (default 5; 0: none)")
    p.add_argument("--load-seconds", type=float, default=None, help="API load test length (default 60)")
    p.add_argument("--concurrency", type=int, default=32)
    p.add_argument("--no-postgres", action="store_true", help="ClickHouse side only")
    p.add_argument("--no-ingest", action="store_true", help="skip benchmarks.consumer")
    p.add_argument("--ingest-events", type=int, default=1_000_000, help="events for benchmarks.consumer")
    p.add_argument("--quick", action="store_true", help="tiny dataset and few samples: checks that it all works")
    p.add_argument("--json", type=Path, help="write every figure to this file")
    p.add_argument("--compare", type=Path, default=REFERENCE,
                   help="a results file (--json) to print every figure next to (default: the issue-19 reference "
                        "run, 10M events); 'none' for no comparison")
    p.add_argument("--action-projection", type=Path, default=None,
                   help="after the comparison, apply this SQL file (e.g. clickhouse/pending/0009_*.sql) and "
                        "measure our storage, warm pages and questions again")
    p.add_argument("--workdir", type=Path, default=None, help="where the temporary data goes (default: TMPDIR)")
    p.add_argument("--timeline-only", action="store_true",
                   help="only the activity timeline on both engines (and the loading it needs): no pages, export, "
                        "API load or questions")
    args = p.parse_args(argv)
    if args.quick:
        args.events, args.workspaces, args.pool_per_workspace, args.concurrency = 20_000, 4, 200, 4
    defaults = (5, 1, 2.0) if args.quick else (100, 5, 60.0)
    for name, value in zip(("warm", "cold", "load_seconds"), defaults, strict=True):
        if getattr(args, name) is None:
            setattr(args, name, value)
    return args


def machine() -> dict[str, Any]:
    mem_kb = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                  if line.startswith("MemTotal:"))
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    return {"cores": os.cpu_count(), "memory_gib": round(mem_kb / 1024 / 1024, 1), "cpu": cpu,
            "kernel": platform.release(), "python": platform.python_version(),
            "load_average_at_start": os.getloadavg()}


_RATE = re.compile(r"^(?P<label>[^:]+(?:\([^)]*\))?[^:]*):\s+(?P<value>[\d,.]+) (?P<unit>events/s|rows/s)")


def ingest(args: argparse.Namespace) -> dict[str, Any] | None:
    """The ingest figures of ``benchmarks.consumer`` (the consumer's own benchmark), if it exists.

    It runs in child processes (its own broker and chDB path): once with a
    preloaded topic (consumer alone) and twice with ``--end-to-end`` (producer
    -> Kafka -> consumer -> visible), with one and with two producer processes. Its printed ``label: N events/s`` lines
    become figures; a failure is reported, not hidden.
    """
    if args.no_ingest or not (Path(__file__).parent / "consumer.py").exists():
        return None
    events = 20_000 if args.quick else args.ingest_events
    result: dict[str, Any] = {"events": events, "figures": {}, "failures": []}
    for extra in ([], ["--end-to-end"], ["--end-to-end", "--producers", "2"]):
        cmd = [sys.executable, "-m", "benchmarks.consumer", "--events", str(events), *extra]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=3600)
        if proc.returncode != 0:
            result["failures"].append({"command": " ".join(cmd[1:]), "returncode": proc.returncode,
                                       "stderr_tail": proc.stderr[-1500:]})
            continue
        for line in proc.stdout.splitlines():
            match = _RATE.match(line.strip())
            if match:
                value = float(match["value"].replace(",", ""))
                result["figures"].setdefault(f"{match['label'].strip()} ({match['unit']})", value)
        logger.info("bench_ingest command=%s figures=%s", " ".join(cmd[1:]), result["figures"])
    return result


def run(args: argparse.Namespace) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="auditlog-bench-", dir=args.workdir))
    workdir.chmod(0o755)  # the PostgreSQL server runs as the postgres user and must reach its folder
    results: dict[str, Any] = {"date": datetime.now(UTC).isoformat(timespec="seconds"),
                               "command": "python -m benchmarks.run " + " ".join(sys.argv[1:]),
                               "machine": machine(), "events": args.events, "workspaces": args.workspaces}
    page_cache = args.cold > 0 and measure.drop_os_cache()
    results["cold_means"] = ("OS page cache dropped and engine caches emptied before each sample" if page_cache
                             else "engine caches emptied before each sample (page cache could not be dropped)")
    results["ingest"] = ingest(args)
    server: PostgresServer | None = None
    try:
        dsn = f"chdb://{workdir / 'chdb'}"
        settings = Settings.model_validate({
            "clickhouse": {"dsn": dsn, "database": DATABASE, "table": TABLE},
            "api": {"jwt_secret": "bench-secret-with-at-least-32-bytes!!", "cursor_secret": "bench-cursor"},
        })
        client = get_client(dsn, settings.clickhouse.uncompressed_cache_mb)
        migrate(client, DATABASE, TABLE)
        table = settings.events_table

        t0 = time.perf_counter()
        dataset.build_pool(client, f"{DATABASE}.pool", args.workspaces, args.pool_per_workspace)
        t_pool = time.perf_counter() - t0
        end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
        data = dataset.expand(client, table, f"{DATABASE}.pool", args.events, args.workspaces,
                              args.pool_per_workspace, end)
        t_expand = time.perf_counter() - t0 - t_pool
        client.command(f"OPTIMIZE TABLE {table} FINAL")
        client.command(f"DROP TABLE {DATABASE}.pool")
        t_summaries = refresh_summaries(client, DATABASE, TABLE)
        loaded = int(client.query(f"SELECT count() FROM {table}").result_rows[0][0])
        results["load"] = {"pool_s": t_pool, "expand_s": t_expand, "optimize_s": time.perf_counter() - t0 - t_pool
                           - t_expand - t_summaries, "summaries_refresh_s": t_summaries, "rows": loaded}
        logger.info("bench_loaded rows=%d seconds=%.1f", loaded, time.perf_counter() - t0)
        results["ch_storage"] = measure.ch_storage(client, DATABASE, TABLE)

        # As the API reads pages (one caller at a time here, so with its quiet thread count).
        reader = EventReader(client, table, max_threads=settings.api.page_max_threads,
                             quiet_max_threads=settings.api.page_quiet_max_threads)
        shapes = build_shapes(client, data)
        results["big_workspace_rows"] = int(client.query(
            f"SELECT count() FROM {table} WHERE workspace_id = {{ws:String}}",
            parameters={"ws": dataset.BIG_WORKSPACE}).result_rows[0][0])
        timelines = build_timeline_shapes(data, shapes)
        max_buckets = settings.api.timeline_max_buckets
        results["ch_timeline"] = measure.ch_timelines(TimelineReader(client, table, max_buckets), timelines,
                                                      args.warm)
        if not args.timeline_only:
            ch_page_figures(args, client, reader, shapes, table, settings, workdir, page_cache, results)

        if not args.no_postgres:
            csv_path = workdir / "events.csv"
            t0 = time.perf_counter()
            dataset.export_csv(client, table, csv_path)
            results["csv_export_s"] = time.perf_counter() - t0
            server = PostgresServer(workdir)
            server.init()
            server.start()
            with server.connect() as conn:
                results["pg_load"] = load(conn, csv_path)
                results["pg_load"]["rows"] = int(conn.execute("SELECT count(*) FROM events").fetchone()[0])  # type: ignore[index]
                results["pg_storage"] = storage(conn)
            csv_path.unlink()
            results["pg_timeline"] = measure.pg_timelines(server, timelines, args.warm, max_buckets)
            results["pg_version"] = server_version(server)
        if not args.no_postgres and not args.timeline_only:
            assert server is not None
            pg_pages = measure.pg_pages(server, shapes, args.warm, args.cold, page_cache)
            results["pg_pages"] = {k: {m: lat.as_dict() for m, lat in v.items()} for k, v in pg_pages.items()}
            results["pg_export"] = measure.twice(measure.pg_export, server, dataset.BIG_WORKSPACE)
            with server.connect() as conn:
                results["questions"] = measure.questions(client, conn, table, end,
                                                         reps=2 if args.quick else 3)
                if args.action_projection:
                    results["with_projection"] = with_projection(
                        args, client, conn, reader, shapes, table, end)
        results["chdb_version"] = client.query("SELECT version()").result_rows[0][0]
        results["machine"]["load_average_at_end"] = os.getloadavg()
    finally:
        if server is not None:
            server.remove()
        shutil.rmtree(workdir, ignore_errors=True)
    return results


def ch_page_figures(args: argparse.Namespace, client: Any, reader: EventReader, shapes: Any, table: str,
                    settings: Settings, workdir: Path, page_cache: bool, results: dict[str, Any]) -> None:
    """Our pages (cold and warm, with the plans of the slow ones), the export and the API under load."""
    ch_pages = measure.ch_pages(client, reader, shapes, args.warm, args.cold, page_cache)
    results["ch_pages"] = {k: {m: lat.as_dict() for m, lat in v.items()} for k, v in ch_pages.items()}
    results["ch_explain"] = {s.name: measure.explain(client, s, table) for s in shapes
                             if ch_pages[s.name]["warm"].p99 > 20.0}
    # Each export runs twice and the second run counts: both engines export warm, whatever the
    # cold page samples just before left in the caches.
    results["ch_export"] = {fmt: measure.twice(measure.ch_export, EventExporter(client, table),
                                               dataset.BIG_WORKSPACE, fmt)
                            for fmt in ("jsonl", "csv")}
    workspaces = [dataset.workspace_name(i) for i in range(args.workspaces)]
    results["api_load"] = load_scenarios(settings, shapes, workspaces, args.load_seconds, args.concurrency,
                                         workdir, dataset.BIG_WORKSPACE)


def server_version(server: PostgresServer) -> str:
    with server.connect() as conn:
        return str(conn.execute("SHOW server_version").fetchone()[0])  # type: ignore[index]


def with_projection(args: argparse.Namespace, client: Any, conn: Any, reader: EventReader, shapes: Any,
                    table: str, end: datetime) -> dict[str, Any]:
    """Apply the SQL file of ``--action-projection`` and measure again what it may change.

    Storage, warm pages (they must not get slower) and the questions, ours only: PostgreSQL's
    side is unchanged. The file's MATERIALIZE runs as a mutation; it is waited for.
    """
    from clickhouse.migrations import Migration

    t0 = time.perf_counter()
    for statement in Migration(0, "candidate", args.action_projection.read_text()).statements(DATABASE, TABLE):
        client.command(statement, settings={"mutations_sync": 2})
    build_s = time.perf_counter() - t0
    logger.info("bench_projection_built seconds=%.1f", build_s)
    pages = measure.ch_pages(client, reader, shapes, args.warm, 0, False)
    return {
        "file": str(args.action_projection), "build_s": build_s,
        "ch_storage": measure.ch_storage(client, DATABASE, TABLE),
        "ch_pages": {k: {m: lat.as_dict() for m, lat in v.items()} for k, v in pages.items()},
        "questions": measure.questions(client, conn, table, end, reps=2 if args.quick else 3),
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s",
                        stream=sys.stderr)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    results = run(args)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=str))
    print(render(results))  # noqa: T201 - the table is this command's output
    if args.compare and str(args.compare) != "none" and not args.quick:
        print("\n" + comparison(results, json.loads(args.compare.read_text())))  # noqa: T201
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
