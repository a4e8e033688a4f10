"""The consumer's store alone: batches of the benchmark's events through EventStore, each statement timed.

``.venv/bin/python -m benchmarks.store --batches 10`` prints events/s and the seconds spent per kind of
statement (stage, verdicts, id lookup, insert), in a fresh embedded engine under a temporary folder.
With ``--settle`` it then waits for the merges and prints the CPU an event with them, which is what a
sustained rate pays (the merges rebuild the search index).
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

from clickhouse_connect.driver.client import Client

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
    parser.add_argument("--settle", action="store_true",
                        help="then wait for the merges to finish and print the CPU an event with them")
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
        merged_before = _merged_rows(client)
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
        if args.settle:
            waited = _settle(client)
            cpu = time.process_time() - cpu_began
            merged = _merged_rows(client) - merged_before
            print(f"with the merges settled ({waited:.1f}s after the last batch): {cpu * 1e6 / n:.1f} µs of the "
                  f"process's CPU an event; rows merged per stored event {merged / n:.2f} (events and id tables)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _merged_rows(client: Client) -> int:
    rows = client.query("SELECT value FROM system.events WHERE event = 'MergedRows'").result_rows
    return int(rows[0][0]) if rows else 0


def _settle(client: Client, quiet_seconds: int = 3, limit_seconds: float = 600.0) -> float:
    """Seconds until no merge has run for ``quiet_seconds`` in a row (at most ``limit_seconds``)."""
    began, quiet = time.perf_counter(), 0
    while quiet < quiet_seconds and time.perf_counter() - began < limit_seconds:
        time.sleep(1)
        running = client.query("SELECT count() FROM system.merges").result_rows[0][0]
        quiet = quiet + 1 if running == 0 else 0
    return time.perf_counter() - began - quiet_seconds


if __name__ == "__main__":
    main()
