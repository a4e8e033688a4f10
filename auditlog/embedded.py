"""``auditlog up``: the whole product in one process on one machine.

chDB opens one data path per process, so in the embedded default the
consumer (a thread) and the API (uvicorn) share this process. It starts the
local Kafka, applies migrations, seeds a reference workspace through the real
producer → Kafka → consumer path, waits until those events are readable, then
prints the URL and bearer tokens and keeps a trickle of live events flowing.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import signal
import stat
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import uvicorn

from auditlog.sql_gateway import banner_lines, build_sql_gateway
from clickhouse.client import get_client
from clickhouse.migrations import migrate
from config.settings import DEV_PLACEHOLDER_SECRET, HMAC_KEY_BYTES, Settings
from consumer import RunResult, build_consumer
from consumer.topics import ensure_topics
from deploy.local_kafka import LocalKafka, LocalKafkaConfig
from producers.producer import AuditProducer
from producers.synthetic import EventGenerator, reference_history
from query_api.app import build_context, create_app
from query_api.routes.demo import demo_tokens
from transparency.service import start_sequencer

logger = logging.getLogger(__name__)


def local_kafka(settings: Settings) -> LocalKafka:
    k = settings.kafka
    return LocalKafka(
        LocalKafkaConfig(
            bootstrap_servers=k.bootstrap_servers,
            controller_port=k.local_controller_port,
            data_dir=k.local_data_dir,
            jars_dir=k.local_jars_dir,
            heap=k.local_heap,
            partitions=k.partitions,
        )
    )


# Where `auditlog up` keeps the secrets it generated on its first start (0600, reused on later starts).
SECRETS_FILE = Path("var/auditlog/secrets.json")


def local_secrets(path: Path = SECRETS_FILE) -> dict[str, str]:
    """The embedded mode's own random JWT and cursor secrets: read from ``path``, or made and kept there.

    The published placeholder would let anyone who can reach the embedded API
    mint an owner token for any workspace. The file is created with mode 0600
    (only this user can read it); a file found with wider permissions is
    narrowed, with a warning.
    """
    if path.exists():
        if stat.S_IMODE(path.stat().st_mode) & 0o077:
            logger.warning("secrets_file_permissions_narrowed path=%s", path)
            path.chmod(0o600)
        loaded = json.loads(path.read_text())
        if isinstance(loaded, dict) and all(isinstance(loaded.get(k), str) and len(loaded[k]) >= 32
                                            for k in ("jwt_secret", "cursor_secret")):
            return {"jwt_secret": loaded["jwt_secret"], "cursor_secret": loaded["cursor_secret"]}
        logger.warning("secrets_file_unusable path=%s action=regenerate", path)
        path.unlink()
    made = {"jwt_secret": secrets.token_urlsafe(48), "cursor_secret": secrets.token_urlsafe(48)}
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump(made, out)
    logger.info("secrets_generated path=%s", path)
    return made


def with_local_secrets(settings: Settings, path: Path = SECRETS_FILE) -> Settings:
    """``settings`` with the embedded mode's own secrets wherever the published placeholder is configured.

    A secret set in the environment is kept as it is.
    """
    own = local_secrets(path)
    update = {k: own[k] for k in ("jwt_secret", "cursor_secret")
              if getattr(settings.api, k) == DEV_PLACEHOLDER_SECRET
              and not (k == "jwt_secret" and settings.api.jwt_algorithm not in HMAC_KEY_BYTES)}
    if not update:
        return settings
    return settings.model_copy(update={"api": settings.api.model_copy(update=update)})


def seed_reference_workspace(settings: Settings, producer: AuditProducer) -> int:
    """Emit the reference workspace's history unless it already has events; returns how many were sent."""
    ws = settings.demo.workspace_id
    existing = readable_events(settings, ws)
    if existing:
        logger.info("seed_skipped workspace=%s existing=%d", ws, existing)
        return 0
    _say(f"Seeding {ws} with {settings.demo.seed_events:,} events through Kafka and the consumer; "
         "the URL and tokens follow once they are readable...")
    now = datetime.now(UTC)
    sent = 0
    for event in reference_history(ws, settings.demo.seed_events,
                                   now - timedelta(days=settings.demo.seed_days), now - timedelta(minutes=5)):
        producer.emit_event(event)
        sent += 1
    producer.flush(60)
    logger.info("seed_sent workspace=%s events=%d", ws, sent)
    return sent


def trickle(settings: Settings, producer: AuditProducer, stop: threading.Event) -> None:
    """A live event every few seconds, so the page always has something new: the workspace as it looks
    while people work (their changes, some token and agent traffic), not a stream of bots."""
    generator = EventGenerator(seed=int(datetime.now(UTC).timestamp()), mix="live")
    while not stop.wait(settings.demo.trickle_seconds):
        producer.emit_event(generator.event(settings.demo.workspace_id, datetime.now(UTC)))


def readable_events(settings: Settings, workspace_id: str) -> int:
    """How many distinct events of ``workspace_id`` the store returns now (what the API can show)."""
    client = get_client(settings.clickhouse.dsn, settings.clickhouse.uncompressed_cache_mb)
    return int(client.query(
        f"SELECT uniqExact(id) FROM {settings.events_table} WHERE workspace_id = {{ws:String}}",
        parameters={"ws": workspace_id},
    ).result_rows[0][0])


def wait_until_stored(settings: Settings, expected: int, timeout: float, gave_up: Callable[[], bool],
                      poll_seconds: float = 0.5) -> int:
    """Wait until ``expected`` events of the reference workspace are readable; returns how many are.

    Returns early (with the count so far) after ``timeout`` seconds or as soon as ``gave_up()`` is
    true (the consumer stopped, the process is stopping).
    """
    deadline = time.monotonic() + timeout
    while True:
        stored = readable_events(settings, settings.demo.workspace_id)
        if stored >= expected or gave_up() or time.monotonic() >= deadline:
            return stored
        time.sleep(poll_seconds)


def seed_and_wait(settings: Settings, producer: AuditProducer, gave_up: Callable[[], bool]) -> None:
    """Seed the reference workspace and return once its events are readable, saying so on stdout.

    The banner comes after this, so the page it points at shows the seeded history rather than an
    empty or half-filled list. The wait is bounded (``AUDITLOG_DEMO__SEED_WAIT_SECONDS``); past it the
    message says how many events are readable so far, and the product starts anyway.
    """
    ws = settings.demo.workspace_id
    started = time.monotonic()
    sent = seed_reference_workspace(settings, producer)
    if not sent:
        return
    stored = wait_until_stored(settings, sent, settings.demo.seed_wait_seconds, gave_up)
    took = time.monotonic() - started
    if stored >= sent:
        _say(f"Seeded {ws}: {stored:,} events readable after {took:.1f} s.")
    elif not gave_up():
        _say(f"Still storing {ws}: {stored:,} of {sent:,} events readable after {took:.0f} s "
             f"(AUDITLOG_DEMO__SEED_WAIT_SECONDS={settings.demo.seed_wait_seconds:g}); starting anyway, "
             "the page fills as the consumer catches up.")


def run_embedded(settings: Settings, *, start_kafka: bool = True, seed: bool = True) -> int:
    """Run the whole product in this process until SIGINT/SIGTERM; returns the exit code.

    Order matters for an honest first run: Kafka is ready only once it takes an idempotent produce
    (deploy/local_kafka.py), the seed is stored and readable before the banner, and the API starts
    serving right after the banner.
    """
    if start_kafka:
        local_kafka(settings).start()
    ensure_topics(settings.kafka.bootstrap_servers, [settings.kafka.topic, settings.kafka.dlq_topic],
                  settings.kafka.partitions)
    ch = settings.clickhouse
    migrate(get_client(ch.dsn, ch.uncompressed_cache_mb), ch.database, ch.table, retention_days=ch.retention_days)

    stop = threading.Event()
    runner = build_consumer(settings, stop)
    outcome: list[RunResult] = []
    sequencer_thread = start_sequencer(settings, stop)

    producer = AuditProducer.from_settings(settings)
    settings = with_local_secrets(settings)
    settings = settings.model_copy(update={"api": settings.api.model_copy(update={"demo_sign_in": True})})

    def consumer_ready() -> tuple[bool, str, str]:
        report = runner.health.report()
        return report.ready, report.state, report.detail

    app = create_app(build_context(settings, audit_producer=producer, readiness={"consumer": consumer_ready}))
    server = uvicorn.Server(uvicorn.Config(app, host=settings.api.host, port=settings.api.port, log_level="warning"))

    def consume() -> None:
        outcome.append(runner.run())
        if not outcome[-1].ok and not stop.is_set():
            # The consumer cannot go on: the whole process stops and says why, rather than serving
            # a log that silently stopped growing.
            logger.error("consumer_failed reason=%s; stopping", outcome[-1].reason)
            server.should_exit = True

    consumer_thread = threading.Thread(target=consume, name="auditlog-consumer", daemon=True)
    consumer_thread.start()
    gateway = None
    try:
        if seed:
            with _sigterm_interrupts():
                seed_and_wait(settings, producer, gave_up=lambda: bool(outcome) or stop.is_set())
        if not outcome:
            threading.Thread(target=trickle, args=(settings, producer, stop), name="auditlog-trickle",
                             daemon=True).start()
            gateway = build_sql_gateway(settings)
            if gateway is not None:
                gateway.start()
            _print_banner(settings, banner_lines(gateway, settings) if gateway is not None else [])
            server.run()
    finally:
        if gateway is not None:
            gateway.stop()
        stop.set()
        try:
            producer.close(10)  # undelivered events go to the spool; raises only if even that fails
        finally:
            consumer_thread.join(timeout=30)
            if sequencer_thread is not None:
                sequencer_thread.join(timeout=30)
    if outcome and not outcome[-1].ok:
        print(f"auditlog up: the consumer stopped: {outcome[-1].reason}", file=sys.stderr)  # noqa: T201
        return 1
    return 0


@contextmanager
def _sigterm_interrupts() -> Iterator[None]:
    """While the seed runs (before uvicorn installs its handlers), SIGTERM stops like Ctrl-C does: through
    run_embedded's ``finally``, so the producer closes and spools what the broker has not acknowledged,
    instead of the process dying with the seed half sent."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _say(line: str) -> None:
    print(line, flush=True)  # noqa: T201 - the command's own output, next to the banner


def _print_banner(settings: Settings, extra: list[str]) -> None:
    url = f"http://{settings.api.host}:{settings.api.port}"
    ws = settings.demo.workspace_id
    tokens = demo_tokens(settings)
    lines = [
        "",
        "Audit log is up (embedded: chDB in-process, local Kafka).",
        f"  URL:        {url}",
        f"  Audit page: {url}/audit?workspace={ws}",
        f"  Workspace:  {ws}",
        f"  Owner token:  {tokens['owner']}",
        f"  Admin token:  {tokens['admin']}",
        f"  Member token: {tokens['member']}  (sees the no-access message)",
        "  Try:",
        f'    curl -H "Authorization: Bearer {tokens["owner"]}" \\',
        f'      "{url}/v1/workspaces/{ws}/audit/events?category=members"',
        *extra,
        "",
    ]
    print("\n".join(lines), flush=True)  # noqa: T201 - the banner is the command's output
