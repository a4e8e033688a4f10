"""The transparency log's costs: sequencing rate, proof latency, full verification rate, storage per event.

``.venv/bin/python -m benchmarks.transparency --events 10000000`` loads the
benchmark dataset (benchmarks/dataset.py: ``ws_000`` holds a fifth of the
events) into a fresh embedded engine, then:

- sequences every event as the sequencer does in production (rounds of
  ``max_events_per_round`` from the events table, leaves + node hashes +
  checkpoints written), and reports events/s — the catch-up rate, which a
  sustained ingest must not exceed;
- times what the inclusion-proof endpoint does for random events of the big
  workspace (leaf lookup by event id, the stored hashes, the path), and
  consistency proofs between random sizes; p50/p99 in ms;
- runs the full ``verify --workspace`` of the big workspace (every event
  re-hashed, every checkpoint, the root), events/s;
- reports the bytes on disk the transparency tables add per event.
"""

# ruff: noqa: T201  (a benchmark prints its numbers)

from __future__ import annotations

import argparse
import json
import logging
import random
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks import dataset, measure
from clickhouse.client import get_client
from clickhouse.migrations import migrate
from config.settings import Settings
from transparency.audit import verify_workspace
from transparency.checkpoint import Keyring, Signer
from transparency.merkle import consistency_proof, inclusion_proof_and_leaf, verify_inclusion
from transparency.sequencer import Sequencer

logger = logging.getLogger(__name__)
DATABASE = "bench_tlog"
TABLES = ("transparency_leaves", "transparency_nodes", "transparency_checkpoints")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--events", type=int, default=1_000_000)
    p.add_argument("--workspaces", type=int, default=100)
    p.add_argument("--pool-per-workspace", type=int, default=400)
    p.add_argument("--round-events", type=int, default=100_000, help="max_events_per_round")
    p.add_argument("--proofs", type=int, default=300, help="inclusion proofs to time")
    p.add_argument("--workdir", type=Path, default=None)
    p.add_argument("--json", type=Path, default=None)
    return p.parse_args(argv)


def _storage(client: Any) -> dict[str, int]:
    return {t: measure.ch_storage(client, DATABASE, t)["total_bytes"] for t in TABLES}


def run(args: argparse.Namespace) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="auditlog-tlog-bench-", dir=args.workdir))
    results: dict[str, Any] = {"date": datetime.now(UTC).isoformat(timespec="seconds"), "events": args.events,
                               "command": "python -m benchmarks.transparency " + " ".join(sys.argv[1:])}
    try:
        dsn = f"chdb://{workdir / 'chdb'}"
        settings = Settings.model_validate({
            "clickhouse": {"dsn": dsn, "database": DATABASE, "table": "events"},
            "transparency": {"settle_seconds": 0, "max_events_per_round": args.round_events,
                             "checkpoint_seconds": 10.0},
        })
        client = get_client(dsn, settings.clickhouse.uncompressed_cache_mb)
        migrate(client, DATABASE, "events")
        table = settings.events_table
        t0 = time.perf_counter()
        dataset.build_pool(client, f"{DATABASE}.pool", args.workspaces, args.pool_per_workspace)
        dataset.expand(client, table, f"{DATABASE}.pool", args.events, args.workspaces, args.pool_per_workspace,
                       datetime.now(UTC).replace(minute=0, second=0, microsecond=0))
        client.command(f"DROP TABLE {DATABASE}.pool")
        client.command(f"OPTIMIZE TABLE {table} FINAL")
        results["load_s"] = time.perf_counter() - t0
        big = dataset.BIG_WORKSPACE
        big_rows = int(client.query(f"SELECT count() FROM {table} WHERE workspace_id = {{ws:String}}",
                                    parameters={"ws": big}).result_rows[0][0])
        results["big_workspace_events"] = big_rows
        results["events_table_bytes"] = measure.ch_storage(client, DATABASE, "events")["total_bytes"]

        signer = Signer.generate()
        sequencer = Sequencer(client, settings, signer)
        t0 = time.perf_counter()
        rounds = 0
        sequenced = 0
        while (stats := sequencer.round()).leaves:
            rounds += 1
            sequenced += stats.leaves
            logger.info("bench_sequenced leaves=%d rounds=%d rate=%.0f/s", sequenced, rounds,
                        sequenced / (time.perf_counter() - t0))
        sequencer.checkpoint_now()
        seconds = time.perf_counter() - t0
        results["sequencing"] = {"events": sequenced, "rounds": rounds, "seconds": seconds,
                                 "events_per_s": sequenced / seconds}

        for name in TABLES:
            client.command(f"OPTIMIZE TABLE {DATABASE}.{name} FINAL")
        sizes = _storage(client)
        results["storage"] = {"bytes": sizes, "bytes_per_event": sum(sizes.values()) / max(sequenced, 1),
                              "events_table_bytes_per_event": results["events_table_bytes"] / max(args.events, 1)}

        store = sequencer.store
        latest = store.checkpoints(big)[-1]
        n = latest.tree_size
        ids = [str(r[0]) for r in client.query(
            f"SELECT event_id FROM {DATABASE}.transparency_leaves WHERE workspace_id = {{ws:String}}"
            " ORDER BY rand() LIMIT {k:UInt32}", parameters={"ws": big, "k": args.proofs}).result_rows]
        inclusion = measure.Latency()
        for event_id in ids:
            t = time.perf_counter()
            index = store.leaf_of(big, event_id)
            assert index is not None
            leaf, path = inclusion_proof_and_leaf(store.reader(big), index, n, store.stride)
            inclusion.samples.append((time.perf_counter() - t) * 1000)
            verify_inclusion(leaf, index, n, path, latest.root_hash)
        rng = random.Random(3)
        consistency = measure.Latency()
        for _ in range(100):
            a = rng.randint(1, n)
            t = time.perf_counter()
            consistency_proof(store.reader(big), a, n, store.stride)
            consistency.samples.append((time.perf_counter() - t) * 1000)
        results["inclusion_proof_ms"] = inclusion.as_dict()
        results["consistency_proof_ms"] = consistency.as_dict()

        t0 = time.perf_counter()
        report = verify_workspace(settings, big, Keyring([signer.public_key]))
        seconds = time.perf_counter() - t0
        assert report.ok, report.summary()
        results["verify"] = {"events": report.leaves_checked, "seconds": seconds,
                             "events_per_s": report.leaves_checked / seconds}
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return results


def render(r: dict[str, Any]) -> str:
    s, st, inc, con, v = r["sequencing"], r["storage"], r["inclusion_proof_ms"], r["consistency_proof_ms"], r["verify"]
    return "\n".join([
        f"transparency log, {r['events']:,} events ({r['big_workspace_events']:,} in the big workspace), {r['date']}",
        f"  sequencing:          {s['events_per_s']:,.0f} events/s ({s['events']:,} events, {s['rounds']} rounds, "
        f"{s['seconds']:.1f} s)",
        f"  inclusion proof:     p50 {inc['p50_ms']:.1f} ms, p99 {inc['p99_ms']:.1f} ms ({inc['n']} proofs, big "
        "workspace, leaf lookup + stored hashes + path)",
        f"  consistency proof:   p50 {con['p50_ms']:.1f} ms, p99 {con['p99_ms']:.1f} ms",
        f"  full verify:         {v['events_per_s']:,.0f} events/s ({v['events']:,} events in {v['seconds']:.1f} s)",
        f"  storage added:       {st['bytes_per_event']:.1f} bytes/event "
        f"(events table: {st['events_table_bytes_per_event']:.1f}); "
        + ", ".join(f"{k.removeprefix('transparency_')} {b / 1e6:.1f} MB" for k, b in st["bytes"].items()),
    ])


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s",
                        stream=sys.stderr)
    results = run(args)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=str))
    print(render(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
