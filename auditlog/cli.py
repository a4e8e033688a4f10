"""``auditlog``: one command line for the whole product."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

from auditlog.logs import configure_logging
from config.settings import Settings, get_settings


def cmd_kafka(settings: Settings, args: argparse.Namespace) -> int:
    from auditlog.embedded import local_kafka
    from consumer.topics import ensure_topics

    kafka = local_kafka(settings)
    if args.action == "start":
        started = kafka.start()
        ensure_topics(settings.kafka.bootstrap_servers, [settings.kafka.topic, settings.kafka.dlq_topic],
                      settings.kafka.partitions)
        print(f"kafka {'started' if started else 'already running'}: pid={kafka.pid()} "
              f"bootstrap={settings.kafka.bootstrap_servers} data={kafka.data_dir}")
    elif args.action == "stop":
        print("kafka stopped" if kafka.stop() else "kafka was not running")
    else:
        pid = kafka.pid()
        if pid is None:
            print("kafka: not running")
            return 3
        print(f"kafka: running pid={pid} bootstrap={settings.kafka.bootstrap_servers} "
              f"accepts_produce={kafka.accepts_produce()}")
    return 0


def cmd_migrate(settings: Settings, _args: argparse.Namespace) -> int:
    from clickhouse.client import get_client
    from clickhouse.migrations import migrate

    ch = settings.clickhouse
    applied = migrate(get_client(ch.dsn, ch.uncompressed_cache_mb), ch.database, ch.table, cluster=ch.cluster,
                      retention_days=ch.retention_days)
    print(f"migrations applied: {', '.join(applied) if applied else 'none (up to date)'}")
    return 0


def cmd_consume(settings: Settings, _args: argparse.Namespace) -> int:
    from consumer import build_consumer

    # Handlers first: a SIGTERM while the consumer is being built still means "stop gracefully".
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    runner = build_consumer(settings, stop)
    if settings.consumer.metrics_port:
        from prometheus_client import start_http_server

        start_http_server(settings.consumer.metrics_port)
    from transparency.service import start_sequencer

    sequencer = start_sequencer(settings, stop)  # appends what the consumer stores to the Merkle logs
    result = runner.run()
    stop.set()
    if sequencer is not None:
        sequencer.join(timeout=30)
    if result.ok:
        return 0
    print(f"auditlog consume: {result.reason}", file=sys.stderr)
    # 75 (EX_TEMPFAIL): stopped while the store was failing, nothing lost; 1: could not go on.
    return 1 if result.fatal else 75


def cmd_serve(settings: Settings, _args: argparse.Namespace) -> int:
    import uvicorn

    from query_api.app import build_context, create_app

    app = create_app(build_context(settings))
    uvicorn.run(app, host=settings.api.host, port=settings.api.port, log_level="warning")
    return 0


def cmd_up(settings: Settings, args: argparse.Namespace) -> int:
    from auditlog.embedded import run_embedded

    return run_embedded(settings, start_kafka=not args.no_kafka, seed=not args.no_seed)


def cmd_emit(settings: Settings, args: argparse.Namespace) -> int:
    from producers import Actor, AuditProducer

    with AuditProducer.from_settings(settings) as producer:
        event_id = producer.emit(
            workspace_id=args.workspace,
            action=args.action,
            actor=Actor(args.actor_kind, args.actor_id or args.actor, args.actor),
            target_id=args.target_id,
            target_display=args.target_display or args.target_id,
            before=json.loads(args.before) if args.before else None,
            after=json.loads(args.after) if args.after else None,
        )
        left = producer.flush(30)
    print(f"emitted {event_id}" + (f" ({left} not yet delivered: spooled if it fails)" if left else ""))
    return 0


def cmd_demo(settings: Settings, args: argparse.Namespace) -> int:
    from producers import AuditProducer
    from producers.synthetic import EventGenerator

    now = datetime.now(UTC)
    generator = EventGenerator(seed=args.seed)
    workspaces = [w.strip() for w in args.workspaces.split(",") if w.strip()]
    with AuditProducer.from_settings(settings) as producer:
        for event in generator.history(workspaces, args.count, now - timedelta(days=args.days), now):
            producer.emit_event(event)
    print(f"emitted {args.count} events into {', '.join(workspaces)}")
    return 0


def cmd_token(settings: Settings, args: argparse.Namespace) -> int:
    from auditlog.embedded import with_local_secrets
    from query_api.security import issue_token

    # Where the published dev secret is configured, sign with the secret `auditlog up` generated (and uses).
    settings = with_local_secrets(settings)
    print(issue_token(settings.api, user_id=args.user, email=args.email or args.user,
                      roles={args.workspace: args.role}, ttl_seconds=args.ttl))
    return 0


def cmd_spool(settings: Settings, args: argparse.Namespace) -> int:
    from producers.replay import replay
    from producers.spool import Spool

    if args.action == "status":
        status = Spool(settings.producer.spool_dir).status()
        print(f"spooled events: {status.total} (in the spool {status.spooled}, left by killed replays "
              f"{status.orphaned}, being replayed now {status.replaying}; damaged files {status.damaged_files})")
        return 0
    result = replay(settings)
    print(f"replayed {result.sent} spooled events from {result.files} file(s); {result.respooled} still spooled")
    return 0 if result.respooled == 0 else 1


def cmd_dlq(settings: Settings, args: argparse.Namespace) -> int:
    from consumer.dlq_replay import list_dead_letters, replay_dead_letters

    if args.action == "replay":
        sent = replay_dead_letters(settings)
        print(f"replayed {sent} dead letter(s) from {settings.kafka.dlq_topic} to {settings.kafka.topic}")
        return 0
    entries = list_dead_letters(settings, args.limit)
    for e in entries:
        when = e.dead_lettered_at.isoformat(timespec="seconds") if e.dead_lettered_at else "-"
        key = (e.key or b"").decode("utf-8", "replace")
        print(f"{when}  {e.source_topic}/{e.source_partition}/{e.source_offset}  key={key}  "
              f"size={e.size}  {e.reason}")
    print(f"{len(entries)} dead letter(s) shown from {settings.kafka.dlq_topic}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="auditlog", description="Audit log: Kafka → ClickHouse → query API")
    sub = parser.add_subparsers(dest="command", required=True)

    kafka = sub.add_parser("kafka", help="the local single-node Kafka broker")
    kafka.add_argument("action", choices=["start", "stop", "status"])
    kafka.set_defaults(func=cmd_kafka)

    sub.add_parser("migrate", help="apply the ClickHouse migrations").set_defaults(func=cmd_migrate)
    sub.add_parser("consume", help="run the consumer (SIGTERM: finish the batch, commit, exit 0)").set_defaults(
        func=cmd_consume)
    sub.add_parser("serve", help="run the query API against a ClickHouse server").set_defaults(func=cmd_serve)

    up = sub.add_parser("up", help="embedded default: Kafka, migrations, consumer + API, seeded workspace")
    up.add_argument("--no-kafka", action="store_true", help="use the configured broker instead of starting one")
    up.add_argument("--no-seed", action="store_true", help="do not seed the reference workspace")
    up.set_defaults(func=cmd_up)

    emit = sub.add_parser("emit", help="emit one audit event")
    emit.add_argument("--workspace", required=True)
    emit.add_argument("--action", required=True)
    emit.add_argument("--actor", required=True, help="the actor's email or token name")
    emit.add_argument("--actor-id")
    emit.add_argument("--actor-kind", default="user", choices=["user", "api_token", "service", "agent"])
    emit.add_argument("--target-id", required=True)
    emit.add_argument("--target-display")
    emit.add_argument("--before", help="JSON object")
    emit.add_argument("--after", help="JSON object")
    emit.set_defaults(func=cmd_emit)

    demo = sub.add_parser("demo", help="emit a realistic synthetic history")
    demo.add_argument("--workspaces", default="ws_demo")
    demo.add_argument("--count", type=int, default=1000)
    demo.add_argument("--days", type=int, default=30)
    demo.add_argument("--seed", type=int, default=7)
    demo.set_defaults(func=cmd_demo)

    token = sub.add_parser("token", help="issue a bearer token (development and scripts)")
    token.add_argument("--workspace", required=True)
    token.add_argument("--role", default="owner")
    token.add_argument("--user", default="usr_cli")
    token.add_argument("--email")
    token.add_argument("--ttl", type=int, default=12 * 3600)
    token.set_defaults(func=cmd_token)

    spool = sub.add_parser("spool", help="events the broker did not take in time")
    spool.add_argument("action", choices=["status", "replay"])
    spool.set_defaults(func=cmd_spool)

    dlq = sub.add_parser("dlq", help="the dead-letter topic: list poison messages, replay them after a fix")
    dlq.add_argument("action", choices=["list", "replay"])
    dlq.add_argument("--limit", type=int, default=100, help="list: how many of the newest to show")
    dlq.set_defaults(func=cmd_dlq)

    from transparency.cli import add_commands as add_transparency_commands

    add_transparency_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    settings = get_settings()
    configure_logging(settings.log_level)
    func: Any = args.func
    try:
        return int(func(settings, args))
    except KeyboardInterrupt:
        return 130
    except Exception as err:  # the CLI's last line of defence: a message, not a traceback
        if settings.log_level.upper() == "DEBUG":
            raise
        print(f"auditlog {args.command}: {type(err).__name__}: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
