"""The scale crossing, measured: both engines on the same rows under the same memory limit.

    python -m benchmarks.crossing                                   # 10M events, 512 MiB per engine
    python -m benchmarks.crossing --events 30000000 --memory-limit 1G

Warm at 10M events PostgreSQL answers pages from RAM; the argument for the
column store is that its data stays small enough to be cached when
PostgreSQL's table and indexes no longer are. This run makes that situation
on one machine: each engine runs in its own memory control group
(benchmarks/cgroup.py) with the same limit, which the kernel enforces on the
engine's memory *and* on the page cache its reads fill. The run refuses to
measure unless PostgreSQL's table and indexes are at least ``--min-ratio``
(5) times the limit, so PostgreSQL cannot hold its working set.

Steps, each engine measured alone:

1. a child process builds the dataset in chDB (benchmarks/dataset.py), the
   page shapes, and the CSV PostgreSQL loads (no limit while loading);
2. PostgreSQL loads the CSV (no limit), is stopped, configured as an expert
   would for a machine of the limit's size (shared_buffers a quarter of it),
   and restarted inside its group; pages (cold and warm), the export and the
   data team's questions are measured through it;
3. a second child process joins the other group *before* it opens chDB and
   measures the same pages, export and questions in process.

The printed table puts them side by side with each group's peak memory and
any process the kernel killed for memory.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import pickle
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks import dataset, measure
from benchmarks.cgroup import CgroupUnavailable, MemoryCgroup, parse_size
from benchmarks.postgres import PostgresServer, load, storage
from benchmarks.report import num, ratio, table
from benchmarks.shapes import build_shapes
from clickhouse.client import get_client
from clickhouse.migrations import migrate
from clickhouse.summaries import refresh_summaries
from query_api.export import EventExporter
from query_api.queries import EventReader

logger = logging.getLogger("benchmarks.crossing")

DATABASE = "bench"
TABLE = "events"
TABLE_NAME = f"{DATABASE}.{TABLE}"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.crossing", description=__doc__.split("\n\n")[0])
    p.add_argument("--events", type=int, default=10_000_000, help="rows in each engine (default 10M)")
    p.add_argument("--workspaces", type=int, default=100)
    p.add_argument("--pool-per-workspace", type=int, default=3000)
    p.add_argument("--memory-limit", type=parse_size, default=parse_size("512M"),
                   help="memory (and page cache) each engine may use, e.g. 512M, 2G (default 512M)")
    p.add_argument("--min-ratio", type=float, default=5.0,
                   help="refuse to measure unless PostgreSQL's table+indexes are this many times the limit")
    p.add_argument("--warm", type=int, default=30, help="warm samples per page shape")
    p.add_argument("--cold", type=int, default=3, help="cold samples per page shape (caches dropped)")
    p.add_argument("--reps", type=int, default=3, help="runs per data-team question (best counts)")
    p.add_argument("--quick", action="store_true", help="tiny dataset: checks that it all works (no ratio check)")
    p.add_argument("--json", type=Path, help="write every figure to this file")
    p.add_argument("--workdir", type=Path, default=None, help="where the data goes (default: TMPDIR)")
    p.add_argument("--phase", choices=("build", "measure-ch"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.quick:
        args.events, args.workspaces, args.pool_per_workspace = 20_000, 4, 200
        args.warm, args.cold, args.reps, args.min_ratio = 5, 1, 1, 0.0
    return args


# ---- child: build ---------------------------------------------------------------------------------


def build(args: argparse.Namespace) -> None:
    """Build the chDB dataset, the shapes and the CSV in ``--workdir`` (a child: chDB's path stays free after)."""
    workdir: Path = args.workdir
    client = get_client(f"chdb://{workdir / 'chdb'}")
    migrate(client, DATABASE, TABLE)
    t0 = time.perf_counter()
    end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    data = dataset.load(client, DATABASE, TABLE, args.events, args.workspaces, args.pool_per_workspace, end)
    refresh_summaries(client, DATABASE, TABLE)  # the documented data-team queries read the daily summaries
    load_s = time.perf_counter() - t0
    shapes = build_shapes(client, data)
    dataset.export_csv(client, TABLE_NAME, workdir / "events.csv")
    with (workdir / "build.pickle").open("wb") as f:
        pickle.dump({"end": end, "shapes": shapes, "load_s": load_s,
                     "ch_storage": measure.ch_storage(client, DATABASE, TABLE)}, f)


# ---- child: measure ClickHouse inside its group ---------------------------------------------------


def measure_ch(args: argparse.Namespace) -> None:
    workdir: Path = args.workdir
    with (workdir / "build.pickle").open("rb") as f:
        built = pickle.load(f)  # our own file, from the build phase
    client = get_client(f"chdb://{workdir / 'chdb'}")
    reader = EventReader(client, TABLE_NAME)
    pages = measure.ch_pages(client, reader, built["shapes"], args.warm, args.cold, measure.drop_os_cache())
    measure.drop_os_cache()
    measure.drop_ch_caches(client)
    exporter = EventExporter(client, TABLE_NAME)
    export_cold = measure.ch_export(exporter, dataset.BIG_WORKSPACE, "jsonl")
    export_warm = measure.ch_export(exporter, dataset.BIG_WORKSPACE, "jsonl")
    result = {
        "pages": {k: {m: lat.as_dict() for m, lat in v.items()} for k, v in pages.items()},
        "export": {"cold": export_cold, "warm": export_warm},
        "questions": measure.ch_questions(client, TABLE_NAME, built["end"], args.reps),
        "load_average_after": os.getloadavg(),
    }
    (workdir / "ch.json").write_text(json.dumps(result, default=str))


# ---- parent: PostgreSQL inside its group, then the ClickHouse child -------------------------------


def configure_postgres_for(server: PostgresServer, limit_bytes: int) -> dict[str, str]:
    """The settings a PostgreSQL expert would pick for a machine with ``limit_bytes`` of memory."""
    mb = limit_bytes >> 20
    chosen = {"shared_buffers": f"'{mb // 4}MB'", "effective_cache_size": f"'{mb * 3 // 4}MB'",
              "work_mem": f"'{max(4, mb // 32)}MB'", "maintenance_work_mem": f"'{max(16, mb // 16)}MB'",
              "max_parallel_workers_per_gather": "2"}
    with (server.data / "postgresql.conf").open("a") as conf:  # later lines win
        conf.write("# benchmarks.crossing: sized for the memory limit\n")
        for key, value in chosen.items():
            conf.write(f"{key} = {value}\n")
    return chosen


def pg_questions(server: PostgresServer, end: datetime, reps: int) -> dict[str, dict[str, Any]]:
    with server.connect() as conn:
        return measure.pg_questions(conn, TABLE_NAME, end, reps)


def run(args: argparse.Namespace) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="auditlog-crossing-", dir=args.workdir))
    workdir.chmod(0o755)  # the PostgreSQL server runs as the postgres user and must reach its folder
    child = [sys.executable, "-m", "benchmarks.crossing", "--workdir", str(workdir), "--events", str(args.events),
             "--workspaces", str(args.workspaces), "--pool-per-workspace", str(args.pool_per_workspace),
             "--warm", str(args.warm), "--cold", str(args.cold), "--reps", str(args.reps)]
    results: dict[str, Any] = {"date": datetime.now(UTC).isoformat(timespec="seconds"),
                               "command": "python -m benchmarks.crossing " + " ".join(sys.argv[1:]),
                               "events": args.events, "memory_limit_bytes": args.memory_limit,
                               "load_average_at_start": os.getloadavg()}
    pg_group = ch_group = None
    server: PostgresServer | None = None
    try:
        logger.info("bench_crossing_build events=%d", args.events)
        subprocess.run([*child, "--phase", "build"], check=True)
        with (workdir / "build.pickle").open("rb") as f:
            built = pickle.load(f)  # written by our own child just now
        results["ch_storage"], results["ch_load_s"] = built["ch_storage"], built["load_s"]

        server = PostgresServer(workdir)
        server.init()
        server.start()
        with server.connect() as conn:
            results["pg_load"] = load(conn, workdir / "events.csv")
            results["pg_storage"] = storage(conn)
        (workdir / "events.csv").unlink()
        server.stop()
        ratio = results["pg_storage"]["total_bytes"] / args.memory_limit
        results["pg_bytes_over_limit"] = ratio
        if ratio < args.min_ratio:
            raise SystemExit(f"PostgreSQL's table and indexes are {ratio:.1f}x the limit, below --min-ratio "
                             f"{args.min_ratio}: use more --events or a smaller --memory-limit")

        pg_group = MemoryCgroup(f"auditlog-crossing-pg-{os.getpid()}", args.memory_limit)
        server.cgroup = pg_group
        results["pg_settings"] = configure_postgres_for(server, args.memory_limit)
        page_cache = measure.drop_os_cache()
        results["cold_means"] = ("OS page cache dropped and engine caches emptied before each cold sample"
                                 if page_cache else "engine caches emptied (page cache could not be dropped)")
        server.start()
        pg_pages = measure.pg_pages(server, built["shapes"], args.warm, args.cold, page_cache)
        server.restart()
        measure.drop_os_cache()
        results["pg"] = {
            "pages": {k: {m: lat.as_dict() for m, lat in v.items()} for k, v in pg_pages.items()},
            "export": {"cold": measure.pg_export(server, dataset.BIG_WORKSPACE),
                       "warm": measure.pg_export(server, dataset.BIG_WORKSPACE)},
            "questions": pg_questions(server, built["end"], args.reps),
        }
        results["pg"]["load_average_after"] = os.getloadavg()
        server.stop()
        results["pg"]["peak_bytes"], results["pg"]["oom_kills"] = pg_group.peak_bytes(), pg_group.oom_kills()

        ch_group = MemoryCgroup(f"auditlog-crossing-ch-{os.getpid()}", args.memory_limit)
        measure.drop_os_cache()
        done = subprocess.run([*child, "--phase", "measure-ch"], preexec_fn=ch_group.join, check=False)
        results["ch"] = (json.loads((workdir / "ch.json").read_text()) if done.returncode == 0
                         else {"failed": f"exit {done.returncode} (oom kills: {ch_group.oom_kills()})"})
        results["ch"]["peak_bytes"], results["ch"]["oom_kills"] = ch_group.peak_bytes(), ch_group.oom_kills()
    finally:
        if server is not None:
            server.remove()
        for group in (pg_group, ch_group):
            if group is not None:
                group.remove()
        shutil.rmtree(workdir, ignore_errors=True)
    return results


def _load(triple: Any) -> str:
    return "/".join(f"{x:.1f}" for x in triple) if triple else "-"


def render(r: dict[str, Any]) -> str:
    ours, pg = r.get("ch", {}), r.get("pg", {})
    mib = 1 << 20
    lines = [
        f"# The crossing: {r['events']:,} events, each engine limited to {r['memory_limit_bytes'] // mib} MiB",
        "",
        f"PostgreSQL table+indexes {r['pg_storage']['total_bytes'] / mib:,.0f} MiB"
        f" ({r['pg_bytes_over_limit']:.1f}x the limit); ours {r['ch_storage']['total_bytes'] / mib:,.0f} MiB."
        f" Peak memory in the group: ours {ours.get('peak_bytes', -1) / mib:,.0f} MiB,"
        f" PostgreSQL {pg.get('peak_bytes', -1) / mib:,.0f} MiB; killed for memory: ours {ours.get('oom_kills')},"
        f" PostgreSQL {pg.get('oom_kills')}. {r.get('cold_means', '')}. Load average (1/5/15 min) at start"
        f" {_load(r.get('load_average_at_start'))}, after PostgreSQL {_load(pg.get('load_average_after'))},"
        f" after ours {_load(ours.get('load_average_after'))}.",
        "",
    ]
    if "failed" in ours:
        lines.append(f"ClickHouse side failed: {ours['failed']}")
        return "\n".join(lines)
    header = ["page shape (50 rows)", "cold p50 ours ms", "PG ms", "ours/PG", "warm p99 ours ms", "PG ms", "ours/PG"]
    rows = []
    for shape, modes in ours["pages"].items():
        theirs = pg["pages"].get(shape, {})
        co, cp = modes["cold"]["p50_ms"], theirs.get("cold", {}).get("p50_ms")
        wo, wp = modes["warm"]["p99_ms"], theirs.get("warm", {}).get("p99_ms")
        rows.append([shape, num(co, 2), num(cp, 2), ratio(co, cp), num(wo, 2), num(wp, 2), ratio(wo, wp)])
    lines += [table(header, rows), ""]
    rows = []
    for mode in ("cold", "warm"):
        o, t = ours["export"][mode]["rows_per_s"], pg["export"][mode]["rows_per_s"]
        rows.append([f"export of {dataset.BIG_WORKSPACE} ({mode}), rows/s", num(o), num(t), ratio(o, t)])
    for name, q in ours["questions"].items():
        o, t = q["ms"], pg["questions"].get(name, {}).get("ms")
        rows.append([f"{name}, ms", num(o), num(t), ratio(o, t)])
    lines.append(table(["figure", "ours", "PostgreSQL", "ours/PG"], rows))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s",
                        stream=sys.stderr)
    if args.phase == "build":
        build(args)
        return 0
    if args.phase == "measure-ch":
        measure_ch(args)
        return 0
    try:
        results = run(args)
    except CgroupUnavailable as exc:
        print(f"benchmarks.crossing: {exc}", file=sys.stderr)  # noqa: T201 - the reason this run cannot measure
        return 2
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=str))
    print(render(results))  # noqa: T201 - the table is this command's output
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
