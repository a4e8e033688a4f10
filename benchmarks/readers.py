"""Readers in parallel and the rare actor, measured one change at a time on a dataset built once.

    python -m benchmarks.readers build --path /tmp/readers-10m --events 10000000
    python -m benchmarks.readers load --path /tmp/readers-10m --mode shared          # before: one client
    python -m benchmarks.readers load --path /tmp/readers-10m --mode pool --export   # after, export alongside
    python -m benchmarks.readers pages --path /tmp/readers-10m                       # warm page p50/p99
    python -m benchmarks.readers engine --path /tmp/readers-10m --threads 8          # pages/s in process
    python -m benchmarks.readers mix --path /tmp/readers-10m --rounds 2              # CPU a page, the load mix
    python -m benchmarks.readers project --path /tmp/readers-10m --file candidate.sql  # storage it costs

``make bench`` rebuilds its dataset every run (and loads PostgreSQL too); this
keeps one chDB path so that each variant (pool size, threads per query, the
a candidate migration) is measured alone against the same data, each run its own
process (chDB opens one path per process). Every result is one JSON line with
the load average next to it.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from clickhouse_connect.driver.client import Client

from benchmarks import dataset, measure
from benchmarks.api_load import load_test, one_client_context
from benchmarks.shapes import build_shapes
from clickhouse.client import get_client
from clickhouse.migrations import migrate
from clickhouse.summaries import SUMMARIES
from config.settings import Settings
from query_api.app import build_context
from query_api.queries import EventReader

logger = logging.getLogger("benchmarks.readers")

DATABASE = "bench"
TABLE = "events"
_META = "readers-dataset.json"


def _settings(path: Path, api: dict[str, Any] | None = None) -> Settings:
    return Settings.model_validate({
        "clickhouse": {"dsn": f"chdb://{path / 'chdb'}", "database": DATABASE, "table": TABLE},
        "api": {"jwt_secret": "bench-secret-with-at-least-32-bytes!!", "cursor_secret": "bench-cursor",
                **(api or {})},
    })


def build(args: argparse.Namespace) -> dict[str, Any]:
    """The benchmark's dataset (``benchmarks.dataset``) in a chDB path of its own, kept for later runs."""
    settings = _settings(args.path)
    client = get_client(settings.clickhouse.dsn, settings.clickhouse.uncompressed_cache_mb)
    migrate(client, DATABASE, TABLE)
    t0 = time.perf_counter()
    dataset.build_pool(client, f"{DATABASE}.pool", args.workspaces, args.pool_per_workspace)
    end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    data = dataset.expand(client, settings.events_table, f"{DATABASE}.pool", args.events, args.workspaces,
                          args.pool_per_workspace, end)
    client.command(f"OPTIMIZE TABLE {settings.events_table} FINAL")
    client.command(f"DROP TABLE {DATABASE}.pool")
    meta = {"events": args.events, "workspaces": args.workspaces, "start": data.start.isoformat(),
            "end": data.end.isoformat(), "build_s": time.perf_counter() - t0}
    (args.path / _META).write_text(json.dumps(meta))
    return meta


def _wait_for_summaries(client: Client) -> None:
    """Let the daily summaries' refresh end first: it runs when the path is opened after an hour
    and would share the cores with the pages measured."""
    for summary in SUMMARIES:
        client.command(f"SYSTEM WAIT VIEW {DATABASE}.{TABLE}_{summary}_refresh")


def _dataset(path: Path, table: str) -> dataset.Dataset:
    meta = json.loads((path / _META).read_text())
    return dataset.Dataset(table, meta["events"], meta["workspaces"], datetime.fromisoformat(meta["start"]),
                           datetime.fromisoformat(meta["end"]))


def load(args: argparse.Namespace) -> dict[str, Any]:
    """The API under load: ``shared`` (one client for everything, as before) or ``pool`` (the pools)."""
    api: dict[str, Any] = {}
    if args.page_handles:
        api["page_handles"] = args.page_handles
    if args.page_threads:
        api["page_max_threads"] = args.page_threads
    settings = _settings(args.path, api)
    client = get_client(settings.clickhouse.dsn, settings.clickhouse.uncompressed_cache_mb)
    migrate(client, DATABASE, TABLE)
    _wait_for_summaries(client)
    data = _dataset(args.path, settings.events_table)
    shapes = build_shapes(client, data)
    context = one_client_context(settings) if args.mode == "shared" else build_context(settings)
    workspaces = [dataset.workspace_name(i) for i in range(data.workspaces)]
    export = dataset.BIG_WORKSPACE if args.export else None
    with tempfile.TemporaryDirectory() as workdir:
        result = load_test(settings, shapes, workspaces, args.seconds, args.concurrency, Path(workdir),
                           export_workspace=export, context=context)
    return {"mode": args.mode, "export_alongside": bool(args.export), "page_handles": settings.api.page_handles,
            "page_max_threads": settings.api.page_max_threads, **result}


def pages(args: argparse.Namespace) -> dict[str, Any]:
    """Warm p50/p99 of every page shape through ``EventReader`` (one caller, as ``make bench`` measures)."""
    settings = _settings(args.path)
    client = get_client(settings.clickhouse.dsn, settings.clickhouse.uncompressed_cache_mb)
    migrate(client, DATABASE, TABLE)
    _wait_for_summaries(client)
    shapes = build_shapes(client, _dataset(args.path, settings.events_table))
    if args.only:
        shapes = [s for s in shapes if s.name == args.only]
    reader = EventReader(client, settings.events_table, max_threads=settings.api.page_max_threads,
                         quiet_max_threads=settings.api.page_quiet_max_threads)
    result = measure.ch_pages(client, reader, shapes, args.warm, args.cold, args.cold > 0 and measure.drop_os_cache())
    return {"pages": {name: {m: lat.as_dict() for m, lat in by.items()} for name, by in result.items()},
            "load_average": os.getloadavg()}


def mix(args: argparse.Namespace) -> dict[str, Any]:
    """Process CPU per page over the API load test's mix: every shape on every workspace (the deep cursor on
    its own), one caller, ``page_max_threads``; a warm-up round, then ``--rounds``. The API's CPU per request is
    nearly all this (docs/performance.md, "Page windows up to a year"); per shape, small workspaces apart from
    the big one, since 99 in 100 of the load test's requests of a shape are on a small one."""
    settings = _settings(args.path)
    client = get_client(settings.clickhouse.dsn, settings.clickhouse.uncompressed_cache_mb)
    data = _dataset(args.path, settings.events_table)
    shapes = build_shapes(client, data)
    _wait_for_summaries(client)
    reader = EventReader(client, settings.events_table, max_threads=settings.api.page_max_threads)
    workspaces = [dataset.workspace_name(i) for i in range(data.workspaces)]
    calls = [(s, ws) for s in shapes for ws in (workspaces if s.after is None else [s.workspace_id])]
    cpu: dict[tuple[str, bool], float] = {}
    pages: dict[tuple[str, bool], int] = {}
    for round_ in range(args.rounds + 1):
        for shape, ws in calls:
            before = time.process_time()
            reader.page(ws, shape.filters, 50, shape.after)
            if round_:  # the first round warms the caches and the remembered densities
                key = (shape.name, ws == dataset.BIG_WORKSPACE)
                cpu[key] = cpu.get(key, 0.0) + time.process_time() - before
                pages[key] = pages.get(key, 0) + 1
    total = sum(cpu.values())
    by_shape = {
        s.name: {"share": sum(c for (n, _), c in cpu.items() if n == s.name) / total,
                 **{("big_cpu_ms" if big else "small_cpu_ms"): cpu[(s.name, big)] * 1000 / pages[(s.name, big)]
                    for big in (False, True) if (s.name, big) in pages}}
        for s in shapes}
    return {"cpu_ms_per_page": total * 1000 / sum(pages.values()), "rounds": args.rounds, "shapes": by_shape,
            "load_average": os.getloadavg()}


def project(args: argparse.Namespace) -> dict[str, Any]:
    """Apply a migration file (e.g. clickhouse/pending/0008_*.sql) to the dataset; its build time and storage."""
    from clickhouse.migrations import Migration

    settings = _settings(args.path)
    client = get_client(settings.clickhouse.dsn, settings.clickhouse.uncompressed_cache_mb)
    t0 = time.perf_counter()
    for statement in Migration(0, "candidate", args.file.read_text()).statements(DATABASE, TABLE):
        client.command(statement, settings={"mutations_sync": 2})
    build_s = time.perf_counter() - t0
    rows = client.query(
        "SELECT name, sum(rows), sum(data_compressed_bytes), sum(data_uncompressed_bytes)"
        " FROM system.projection_parts WHERE database = {db:String} AND table = {t:String} AND active"
        " GROUP BY name", parameters={"db": DATABASE, "t": TABLE}).result_rows
    table_bytes = client.query(
        "SELECT sum(data_compressed_bytes) FROM system.parts WHERE database = {db:String} AND table = {t:String}"
        " AND active", parameters={"db": DATABASE, "t": TABLE}).result_rows[0][0]
    return {"file": str(args.file), "build_s": build_s, "table_compressed_bytes": int(table_bytes),
            "projections": [{"name": r[0], "rows": int(r[1]), "compressed_bytes": int(r[2]),
                             "uncompressed_bytes": int(r[3])} for r in rows]}


def engine(args: argparse.Namespace) -> dict[str, Any]:
    """Pages per second of ``--threads`` callers in this process, straight through ``EventReader`` (no HTTP):
    over one shared client, then over a pool of as many handles. Also the process CPU per page."""
    import random
    import threading

    from clickhouse.client import open_client
    from clickhouse.pool import ClientPool

    settings = _settings(args.path)
    client = get_client(settings.clickhouse.dsn, settings.clickhouse.uncompressed_cache_mb)
    shapes = build_shapes(client, _dataset(args.path, settings.events_table))
    table = settings.events_table
    pool = ClientPool(lambda: open_client(settings.clickhouse.dsn, settings.clickhouse.uncompressed_cache_mb),
                      args.threads, 60.0, "pages")
    readers = {"one shared client": EventReader(client, table),
               f"pool of {args.threads}, max_threads 1": EventReader(pool, table, max_threads=1),
               f"pool of {args.threads}, engine's max_threads": EventReader(pool, table)}
    out: dict[str, Any] = {}
    for rounds in range(2):  # twice, interleaved, so that a change of the machine's load hits all alike
        for name, reader in readers.items():
            latencies: list[float] = []
            deadline = time.monotonic() + args.seconds

            def caller(seed: int, reader: EventReader = reader, deadline: float = deadline,
                       latencies: list[float] = latencies) -> None:
                rng = random.Random(seed)
                while time.monotonic() < deadline:
                    shape = rng.choice(shapes)
                    t0 = time.perf_counter()
                    reader.page(shape.workspace_id, shape.filters, 50, shape.after)
                    latencies.append((time.perf_counter() - t0) * 1000)

            cpu0, t0 = time.process_time(), time.monotonic()
            threads = [threading.Thread(target=caller, args=(i,)) for i in range(args.threads)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            elapsed, cpu = time.monotonic() - t0, time.process_time() - cpu0
            ordered = sorted(latencies)
            out[f"{name} (round {rounds + 1})"] = {
                "pages_per_s": len(ordered) / elapsed, "p50_ms": ordered[len(ordered) // 2],
                "p99_ms": ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))],
                "cpu_ms_per_page": cpu * 1000 / max(len(ordered), 1), "load_average": os.getloadavg()}
            logger.info("bench_engine %s %s", name, out[f"{name} (round {rounds + 1})"])
    pool.close()
    return {"threads": args.threads, "seconds": args.seconds, "results": out}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.readers", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build")
    b.add_argument("--events", type=int, default=10_000_000)
    b.add_argument("--workspaces", type=int, default=100)
    b.add_argument("--pool-per-workspace", type=int, default=3000)
    lo = sub.add_parser("load")
    lo.add_argument("--mode", choices=("shared", "pool"), default="pool")
    lo.add_argument("--export", action="store_true", help="one client exports the big workspace meanwhile")
    lo.add_argument("--seconds", type=float, default=60.0)
    lo.add_argument("--concurrency", type=int, default=32)
    lo.add_argument("--page-handles", type=int, default=0, help="default: the setting's")
    lo.add_argument("--page-threads", type=int, default=0, help="default: the setting's")
    pg = sub.add_parser("pages")
    pg.add_argument("--warm", type=int, default=100)
    pg.add_argument("--only", default="", help="one shape by name, e.g. 'rare actor'")
    pg.add_argument("--cold", type=int, default=0, help="cold samples per shape")
    en = sub.add_parser("engine")
    en.add_argument("--threads", type=int, default=8)
    en.add_argument("--seconds", type=float, default=20.0)
    mx = sub.add_parser("mix")
    mx.add_argument("--rounds", type=int, default=2, help="measured rounds after the warm-up round")
    pj = sub.add_parser("project")
    pj.add_argument("--file", type=Path, required=True)
    for parser in (b, lo, pg, pj, en, mx):
        parser.add_argument("--path", type=Path, required=True)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s",
                        stream=sys.stderr)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    args.path.mkdir(parents=True, exist_ok=True)
    result = {"build": build, "load": load, "pages": pages, "project": project,
              "engine": engine, "mix": mix}[args.command](args)
    result["load_average_end"] = os.getloadavg()
    print(json.dumps(result, default=str))  # noqa: T201 - the figures are this command's output
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
