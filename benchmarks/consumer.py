"""Consumer throughput: ``python -m benchmarks.consumer --events 1000000 [--end-to-end]``.

Starts a throwaway local broker (Kafka from its Maven Central jars) and a
throwaway chDB path, preloads the topic with pre-encoded events (consumer
only) or produces them while consuming (end to end: producer → Kafka →
consumer → visible through a query), and prints events/s. End to end, the
producers are separate processes, as the services that emit events are: a
producer thread inside the consumer's process would share its interpreter
lock and measure the two taking turns. It also prints the
decode and insert rates measured alone, which are what limit the consumer.
"""

# ruff: noqa: T201  (a benchmark prints its numbers)
from __future__ import annotations

import argparse
import multiprocessing
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from confluent_kafka import Producer

from clickhouse.client import get_client
from clickhouse.events import insert_rows, record_to_row
from clickhouse.migrations import migrate
from config.settings import Settings
from consumer import build_consumer
from consumer.topics import ensure_topics
from deploy.local_kafka import LocalKafka, LocalKafkaConfig
from producers.producer import AuditProducer
from producers.synthetic import EventGenerator
from schemas.codec import default_codec
from transparency.service import start_sequencer

SAMPLE = 20_000
STORING = [0.0]  # seconds the consumer's flusher thread spent in ConsumerRunner._store
CPU_SPENT = [0.0]  # seconds of the process's CPU (Python threads, engine threads, merges) while consuming
SEQUENCED_AFTER = [0.0]  # --sequence: seconds from the last stored event until every event had its leaf
RSS_MB = [0.0, 0.0]  # the process's resident memory when the consumer started, and its peak while consuming


def _rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def _settings(bootstrap: str, dsn: str, batch: int, seconds: float, key_file: Path | None = None,
              indexes_on_insert: bool = False) -> Settings:
    """The bench settings; with ``key_file``, the transparency log's sequencer runs alongside (as in
    ``auditlog consume``: a thread of the consumer's process, sharing its interpreter lock); with
    ``indexes_on_insert``, the consumer builds every skip index on insert (none left to merges)."""
    consumer: dict[str, object] = {"group_id": "bench", "batch_max_events": batch, "batch_max_seconds": seconds}
    if indexes_on_insert:
        consumer["indexes_built_at_merge"] = ()
    return Settings.model_validate({
        "kafka": {"bootstrap_servers": bootstrap, "topic": "bench.events", "dlq_topic": "bench.events.dlq"},
        "clickhouse": {"dsn": dsn, "database": "bench", "table": "events"},
        "consumer": consumer,
        "transparency": {"enabled": key_file is not None, "signing_key_file": str(key_file or "unused.pem"),
                         "topic": "bench.checkpoints"},
    })


def _sequenced(settings: Settings) -> int:
    return int(get_client(settings.clickhouse.dsn).query(
        f"SELECT count() FROM {settings.clickhouse.database}.transparency_leaves").result_rows[0][0])


def _encoded(n: int, months: int = 5) -> list[tuple[bytes, bytes]]:
    """``n`` encoded events over ``months`` months from 2026-01-01: a batch writes one part per month it
    spans, so 5 (the default, a backfill's spread) costs more per event than 1 (live traffic)."""
    codec = default_codec()
    gen = EventGenerator(seed=1)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    end = datetime(2026 + months // 12, 1 + months % 12, 1, tzinfo=UTC)
    sample = [(e.workspace_id.encode(), codec.encode(e.to_record()))
              for e in gen.history([f"ws_{i}" for i in range(20)], min(n, SAMPLE), start, end)]
    # Distinct ids matter (the table dedups by key): re-encode is too slow for 1M, so patch the id bytes.
    out = []
    for i in range(n):
        key, value = sample[i % len(sample)]
        if i >= len(sample):
            suffix = f"{i:012x}".encode()
            value = value[:10 + 1 + 24] + suffix + value[10 + 1 + 36:]
        out.append((key, value))
    return out


def _produce(settings: Settings, index: int, count: int, ready: Any, go: Any) -> None:
    """One producer service: builds its events, waits for the start signal, emits them all, flushes."""
    gen = EventGenerator(seed=100 + index)
    events = list(gen.history([f"ws_{i}" for i in range(20)], count,
                              datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 6, 1, tzinfo=UTC)))
    with AuditProducer.from_settings(settings) as producer:
        ready.set()
        go.wait()
        for event in events:
            producer.emit_event(event)


def _end_to_end(settings: Settings, n: int, producers: int) -> float:
    """Seconds from the producers' start until the table holds all ``n`` events."""
    ctx = multiprocessing.get_context("spawn")  # no fork of a process that has the engine loaded
    go = ctx.Event()
    procs, readies = [], []
    for i in range(producers):
        ready = ctx.Event()
        share = n // producers + (1 if i < n % producers else 0)
        proc = ctx.Process(target=_produce, args=(settings, i, share, ready, go), daemon=True)
        proc.start()
        procs.append(proc)
        readies.append(ready)
    try:
        for ready in readies:
            if not ready.wait(600):
                raise RuntimeError("a producer process did not get ready")

        def check_producers() -> None:
            if not any(p.is_alive() for p in procs) and any(p.exitcode for p in procs):
                raise RuntimeError(f"a producer process failed: exit codes {[p.exitcode for p in procs]}")

        elapsed, _sustained = _consume_until(settings, n, on_start=go.set, check=check_producers)
        return elapsed
    finally:
        for proc in procs:
            proc.join(60)


def _stored(settings: Settings) -> int:
    return int(get_client(settings.clickhouse.dsn).query(f"SELECT count() FROM {settings.events_table}")
               .result_rows[0][0])


def _consume_until(settings: Settings, n: int, on_start: Callable[[], None] = lambda: None,
                   check: Callable[[], None] = lambda: None) -> tuple[float, float]:
    """Seconds from the consumer's start until all ``n`` events are stored, and the sustained
    events/s from the first stored batch to the last (without joining the group and the first fill).

    ``on_start`` runs right after the consumer starts (the end-to-end run releases its producers
    there); ``check`` runs while waiting and may raise to abandon the run.
    """
    stop = threading.Event()
    sequencer = start_sequencer(settings, stop)  # None unless the settings turn the log on
    runner = build_consumer(settings, stop)
    store = runner._store  # timed here: how much of the wall time the flusher thread spends storing
    real_store = store.store

    def timed_store(messages: Any, token: str) -> Any:
        begun = time.perf_counter()
        try:
            return real_store(messages, token)
        finally:
            STORING[0] += time.perf_counter() - begun

    store.store = timed_store  # type: ignore[method-assign]
    thread = threading.Thread(target=runner.run, daemon=True)
    RSS_MB[0] = RSS_MB[1] = _rss_mb()
    started, cpu_started = time.perf_counter(), time.process_time()
    thread.start()
    on_start()
    first: tuple[float, int] | None = None
    while (stored := _stored(settings)) < n:
        if first is None and stored:
            first = (time.perf_counter(), stored)
        time.sleep(0.05)
        RSS_MB[1] = max(RSS_MB[1], _rss_mb())
        check()
    ended = time.perf_counter()
    CPU_SPENT[0] = time.process_time() - cpu_started
    if sequencer is not None:  # how long after the last stored event the log holds every event
        while _sequenced(settings) < n:
            time.sleep(0.05)
        SEQUENCED_AFTER[0] = time.perf_counter() - ended
    stop.set()
    thread.join(60)
    if sequencer is not None:
        sequencer.join(60)
    sustained = (n - first[1]) / (ended - first[0]) if first is not None and ended > first[0] else 0.0
    return ended - started, sustained


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=None, help="batch_max_events (default: the setting's)")
    parser.add_argument("--seconds", type=float, default=None, help="batch_max_seconds")
    parser.add_argument("--months", type=int, default=5, choices=range(1, 121), metavar="1..120",
                        help="months the preloaded events span (5: a backfill's spread; 1: live traffic)")
    parser.add_argument("--end-to-end", action="store_true")
    parser.add_argument("--producers", type=int, default=1, help="producer processes (end to end)")
    parser.add_argument("--sequence", action="store_true",
                        help="run the transparency log's sequencer alongside (as `auditlog consume` does)")
    parser.add_argument("--indexes-on-insert", action="store_true",
                        help="build every skip index on insert (consumer.indexes_built_at_merge = []): the before")
    args = parser.parse_args()
    defaults = Settings().consumer
    batch = args.batch or defaults.batch_max_events
    seconds = args.seconds or defaults.batch_max_seconds

    messages = _encoded(args.events, args.months)
    codec = default_codec()
    t = time.perf_counter()
    rows = [record_to_row(codec.decode(v), 1) for _k, v in messages[:SAMPLE]]
    print(f"Python decode alone (fastavro with logical types): {SAMPLE / (time.perf_counter() - t):,.0f} events/s"
          " (one core; the consumer lets the engine decode)")

    work = Path(tempfile.mkdtemp(prefix="auditlog-bench-"))
    from tests.support.services import _free_port

    kafka = LocalKafka(LocalKafkaConfig(bootstrap_servers=f"127.0.0.1:{_free_port()}", controller_port=_free_port(),
                                        data_dir=work / "kafka", jars_dir=Path("var/kafka-lib"), heap="768m",
                                        partitions=4))
    kafka.start()
    try:
        settings = _settings(kafka.config.bootstrap_servers, f"chdb://{work / 'chdb'}", batch, seconds,
                             work / "signing-key.pem" if args.sequence else None, args.indexes_on_insert)
        ensure_topics(settings.kafka.bootstrap_servers, [settings.kafka.topic, settings.kafka.dlq_topic], 4)
        client = get_client(settings.clickhouse.dsn)
        migrate(client, "bench", "events")
        t = time.perf_counter()
        insert_rows(client, "bench.events", rows, "bench-alone")
        print(f"insert alone:  {len(rows) / (time.perf_counter() - t):,.0f} rows/s ({len(rows)}-row insert)")
        client.command("TRUNCATE TABLE bench.events")
        client.command("TRUNCATE TABLE bench.events_ids")  # the ids of the insert above, or they count as stored
        if args.end_to_end:
            elapsed = _end_to_end(settings, args.events, args.producers)
            processes = f"{args.producers} producer process{'es' if args.producers > 1 else ''}"
            print(f"end to end, {processes} (AuditProducer.emit → Kafka → consumer → count() sees all): "
                  f"{args.events / elapsed:,.0f} events/s ({args.events:,} in {elapsed:.1f}s, batch {batch})")
            return
        producer = Producer({"bootstrap.servers": settings.kafka.bootstrap_servers, "linger.ms": 20,
                             "compression.type": "zstd", "queue.buffering.max.messages": 2_000_000})
        for key, value in messages:
            producer.produce(settings.kafka.topic, key=key, value=value)
            producer.poll(0)
        producer.flush(120)
        elapsed, sustained = _consume_until(settings, args.events)
        print(f"consumer alone (preloaded topic → stored): {args.events / elapsed:,.0f} events/s "
              f"({args.events:,} in {elapsed:.1f}s from start, group join included; batch {batch}, {seconds}s)")
        print(f"consumer alone, sustained (first stored batch → all stored): {sustained:,.0f} events/s")
        print(f"consumer process CPU: {CPU_SPENT[0] * 1e6 / args.events:.1f} µs per event (Python and engine threads,"
              f" merges included; the broker is another process): {args.events / CPU_SPENT[0]:,.0f} events per"
              " CPU-second")
        if args.sequence:
            cfg = settings.transparency
            print(f"  with the sequencer alongside (settle {cfg.settle_seconds}s, poll {cfg.poll_seconds}s): "
                  f"every event had its leaf {SEQUENCED_AFTER[0]:.1f}s after the last was stored")
        print(f"  the flusher thread stored batches for {STORING[0]:.1f}s ({STORING[0] / elapsed:.0%} of the wall"
              " time: staging, the contract check, the id lookup and the INSERT … SELECT)")
        print(f"  resident memory: {RSS_MB[0]:,.0f} MB when the consumer started (the preloaded events included),"
              f" peak {RSS_MB[1]:,.0f} MB while consuming (+{RSS_MB[1] - RSS_MB[0]:,.0f} MB)")
    finally:
        kafka.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
