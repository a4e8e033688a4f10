"""The consumer's store alone: batches of the benchmark's events through EventStore, each statement timed.

``.venv/bin/python -m benchmarks.store --batches 10`` prints events/s and the seconds spent per kind of
statement (stage, verdicts, id lookup, insert), in a fresh embedded engine under a temporary folder.
"""

# ruff: noqa: T201  (a benchmark prints its numbers)
from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.consumer import _encoded
from clickhouse.client import get_client
from clickhouse.migrations import migrate
from config.settings import Settings
from consumer.store import EventStore
from schemas.catalog import load_catalog
from schemas.codec import default_codec


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batches", type=int, default=10)
    parser.add_argument("--batch", type=int, default=20_000)
    parser.add_argument("--months", type=int, default=5, choices=range(1, 121), metavar="1..120",
                        help="months the events span: a batch writes one part per month (1: live traffic)")
    parser.add_argument("--indexes-on-insert", action="store_true",
                        help="build every skip index on insert (consumer.indexes_built_at_merge = []): the before")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="auditlog-store-"))
    try:
        client = get_client(f"chdb://{work}")
        migrate(client, "bench", "events")
        store = EventStore(client, database="bench", events_table="bench.events", codec=default_codec(),
                           catalog=load_catalog(),
                           indexes_built_at_merge=() if args.indexes_on_insert else
                           Settings().consumer.indexes_built_at_merge)
        messages = _encoded(args.batches * args.batch, args.months)
        spent: dict[str, float] = {}

        def timed(kind: str, call: Callable[..., Any]) -> Callable[..., Any]:
            def run(statement: Any, *a: Any, **k: Any) -> Any:
                began = time.perf_counter()
                try:
                    return call(statement, *a, **k)
                finally:
                    name = f"{kind}: {statement[:40]}" if isinstance(statement, str) else kind
                    spent[name] = spent.get(name, 0.0) + time.perf_counter() - began
            return run

        client.query = timed("query", client.query)  # type: ignore[method-assign]
        client.command = timed("command", client.command)  # type: ignore[method-assign]
        client.raw_insert = timed("stage", client.raw_insert)  # type: ignore[method-assign]
        began, cpu_began = time.perf_counter(), time.process_time()
        for b in range(args.batches):
            chunk = messages[b * args.batch:(b + 1) * args.batch]
            store.store([(0, b * args.batch + i, k, v) for i, (k, v) in enumerate(chunk)], f"bench-{b}")
        total = time.perf_counter() - began
        n = args.batches * args.batch
        cpu = time.process_time() - cpu_began
        print(f"store alone: {n / total:,.0f} events/s ({n:,} in {total:.2f}s, {args.batch}-event batches); "
              f"{cpu * 1000 / args.batches:.0f} ms of the process's CPU a batch (engine threads and merges included)")
        for name, seconds in sorted(spent.items(), key=lambda kv: -kv[1]):
            print(f"  {seconds * 1000 / args.batches:7.1f} ms a batch  {name}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
