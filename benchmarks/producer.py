"""Producer benchmark: events/s one process sustains into the broker, and the cost of one emit().

    python -m benchmarks.producer --events 200000

Uses the configured broker (AUDITLOG_KAFKA__BOOTSTRAP_SERVERS); when that is
the local default and nothing answers, starts the local broker first. Events
are generated before the clock starts, so the numbers are the producer's own:
validation against the catalog, Avro encoding, librdkafka enqueue, and
delivery with acks=all.
"""

from __future__ import annotations

import argparse
import statistics
import time
from datetime import UTC, datetime, timedelta

from auditlog.embedded import local_kafka
from config.settings import get_settings
from consumer.topics import ensure_topics
from producers.producer import AuditProducer, DeliveryReport
from producers.synthetic import EventGenerator
from schemas.event import Actor


def _percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--topic", default="bench.producer")
    args = parser.parse_args(argv)

    settings = get_settings()
    settings = settings.model_copy(update={"kafka": settings.kafka.model_copy(update={"topic": args.topic})})
    kafka = local_kafka(settings)
    if not kafka.accepts_produce(timeout=3):
        kafka.start()
    ensure_topics(settings.kafka.bootstrap_servers, [args.topic], settings.kafka.partitions)

    now = datetime.now(UTC)
    generator = EventGenerator(seed=1)
    workspaces = [f"ws_{i:03d}" for i in range(100)]
    events = list(generator.history(workspaces, args.events, now - timedelta(days=30), now))

    delivered = 0

    def on_delivery(report: DeliveryReport) -> None:
        nonlocal delivered
        delivered += report.delivered

    with AuditProducer.from_settings(settings, on_delivery=on_delivery) as producer:
        # Warm-up: connection, metadata, idempotent producer id.
        for event in events[:1000]:
            producer.emit_event(event)
        producer.flush(30)
        delivered = 0
        latencies: list[float] = []
        started = time.perf_counter()
        for event in events:
            t0 = time.perf_counter_ns()
            producer.emit_event(event)
            latencies.append((time.perf_counter_ns() - t0) / 1000)
        enqueued = time.perf_counter() - started
        left = producer.flush(120)
        total = time.perf_counter() - started

        # The keyword API a service calls (catalog lookup and event construction included).
        kw_latencies: list[float] = []
        alex = Actor("user", "usr_1", "alex@example.com")
        for i in range(20_000):
            t0 = time.perf_counter_ns()
            producer.emit(workspace_id=workspaces[i % 100], action="MEMBER_ROLE_CHANGED", actor=alex,
                          target_id="usr_2", target_display="sam@example.com",
                          before={"role": "member"}, after={"role": "admin"})
            kw_latencies.append((time.perf_counter_ns() - t0) / 1000)
        producer.flush(60)

    lines = [
        f"producer benchmark: {args.events:,} events, 100 workspaces, topic {args.topic}",
        f"  sustained (emit → acks=all delivered): {args.events / total:,.0f} events/s "
        f"({total:.2f} s; enqueue alone {args.events / enqueued:,.0f} events/s)",
        f"  delivered: {delivered:,} (undelivered after flush: {left})",
        f"  emit_event() latency: p50 {statistics.median(latencies):.1f} µs, p99 {_percentile(latencies, 0.99):.1f} µs,"
        f" max {max(latencies):.0f} µs",
        f"  emit(**fields) latency: p50 {statistics.median(kw_latencies):.1f} µs,"
        f" p99 {_percentile(kw_latencies, 0.99):.1f} µs",
    ]
    print("\n".join(lines))  # noqa: T201 - the benchmark's output


if __name__ == "__main__":
    main()
