"""Which index for free-text search: the candidates of migration 0008, measured on one dataset.

    python -m benchmarks.search_index --events 2000000

Builds the benchmark dataset (benchmarks/dataset.py) in a fresh chDB path with
every migration applied, then for each candidate drops ``idx_search``, adds
the candidate over the same expression (clickhouse/events.py: SEARCH_TEXT),
materialises it, and measures its bytes per event, its build time and the
warm search pages of ``benchmarks.shapes.search_shapes`` (p50/p99 of
``EventReader.page``, with the granules the first query reads). "none" is the
same pages with no index. Prints one table; ``--json`` keeps every figure.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks import dataset, measure
from benchmarks.measure import _Recorder
from benchmarks.shapes import PAGE_SIZE, search_shapes
from clickhouse.client import get_client
from clickhouse.events import SEARCH_TEXT
from clickhouse.migrations import migrate
from query_api.queries import EventReader

logger = logging.getLogger("benchmarks.search_index")

DATABASE = "bench"
TABLE = "events"
CANDIDATES: dict[str, str | None] = {
    "none": None,
    "ngrambf_v1(3, 8 KiB, 2 hashes) per granule": "ngrambf_v1(3, 8192, 2, 0) GRANULARITY 1",
    "ngrambf_v1(3, 32 KiB, 2 hashes) per granule": "ngrambf_v1(3, 32768, 2, 0) GRANULARITY 1",
    "tokenbf_v1(32 KiB, 2 hashes) per granule": "tokenbf_v1(32768, 2, 0) GRANULARITY 1",
    "text(tokenizer = ngrams(3))": "text(tokenizer = ngrams(3))",
}


def _granules(client: Any, reader_table: str, shape: Any) -> str:
    """Granules the first query of the page reads / the workspace's granules, from EXPLAIN indexes = 1."""
    recorder = _Recorder(client)
    EventReader(recorder, reader_table).page(shape.workspace_id, shape.filters, PAGE_SIZE, shape.after)  # type: ignore[arg-type]
    sql, params, settings = recorder.sent[-1]
    rows = client.query(f"EXPLAIN indexes = 1 {sql}", parameters=params, settings=settings).result_rows
    lines = [str(r[0]).strip("│├└─ ") for r in rows]
    granules = [ln for ln in lines if ln.startswith("Granules:") and "/" in ln]
    return granules[-1].removeprefix("Granules: ") if granules else "?"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.search_index", description=__doc__.split("\n\n")[0])
    p.add_argument("--events", type=int, default=2_000_000)
    p.add_argument("--workspaces", type=int, default=100)
    p.add_argument("--pool-per-workspace", type=int, default=3000)
    p.add_argument("--warm", type=int, default=30, help="warm samples per search shape")
    p.add_argument("--only", action="append", default=None, help="measure only these candidates (by name)")
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s", stream=sys.stderr)
    workdir = Path(tempfile.mkdtemp(prefix="auditlog-search-index-"))
    results: dict[str, Any] = {"events": args.events, "load_average_at_start": list(os.getloadavg())}
    try:
        client = get_client(f"chdb://{workdir / 'chdb'}", 256)
        migrate(client, DATABASE, TABLE)
        table = f"{DATABASE}.{TABLE}"
        end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
        data = dataset.load(client, DATABASE, TABLE, args.events, args.workspaces, args.pool_per_workspace, end)
        person = client.query(
            f"SELECT actor_display FROM {table} WHERE workspace_id = {{ws:String}} AND actor_kind = 'user'"
            " GROUP BY actor_display ORDER BY count() DESC LIMIT 1", parameters={"ws": dataset.BIG_WORKSPACE},
        ).result_rows[0][0]
        shapes = search_shapes(str(person).split("@")[0] + "@", data.start + (data.end - data.start) / 2)
        reader = EventReader(client, table)
        for name, index in CANDIDATES.items():
            if args.only and name not in args.only:
                continue
            client.command(f"ALTER TABLE {table} DROP INDEX IF EXISTS idx_search", settings={"mutations_sync": 2})
            build_s = 0.0
            size = 0
            if index is not None:
                t0 = time.perf_counter()
                client.command(f"ALTER TABLE {table} ADD INDEX idx_search {SEARCH_TEXT} TYPE {index}")
                client.command(f"ALTER TABLE {table} MATERIALIZE INDEX idx_search", settings={"mutations_sync": 2})
                build_s = time.perf_counter() - t0
                size = int(client.query(
                    "SELECT sum(data_compressed_bytes) FROM system.data_skipping_indices"
                    " WHERE database = {db:String} AND table = {t:String} AND name = 'idx_search'",
                    parameters={"db": DATABASE, "t": TABLE}).result_rows[0][0])
            pages = measure.ch_pages(client, reader, shapes, args.warm, 0, False)
            results[name] = {
                "bytes_per_event": size / args.events, "build_s": build_s,
                "pages": {s.name: {**pages[s.name]["warm"].as_dict(), "granules": _granules(client, table, s)}
                          for s in shapes},
            }
            logger.info("bench_search_index candidate=%s result=%s", name, results[name])
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=str))
    names = [s.name for s in shapes]
    lines = ["| index | bytes/event | build s | " + " | ".join(f"{n} p50/p99 ms (granules)" for n in names) + " |",
             "| --- " * (3 + len(names)) + "|"]
    for name, r in results.items():
        if not isinstance(r, dict):
            continue
        cells = [f"{r['pages'][n]['p50_ms']:.1f} / {r['pages'][n]['p99_ms']:.1f} ({r['pages'][n]['granules']})"
                 for n in names]
        lines.append(f"| {name} | {r['bytes_per_event']:.2f} | {r['build_s']:.0f} | " + " | ".join(cells) + " |")
    print("\n".join(lines))  # noqa: T201 - the table is this command's output
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
