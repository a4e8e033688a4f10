"""``auditlog``: one command line for the whole product (Typer; help and errors drawn by Rich).

Every command and option has a ``--help`` text with its unit; values are checked
before anything runs, and a bad one is refused naming the option. Long commands
show progress on stderr (auditlog/progress.py); stdout keeps only their result.

Exit codes: 0 ok; 1 a runtime failure, the reason on stderr; 2 a usage error (an
unknown option, a bad value: the message names it). Some commands add their own,
kept from before: ``kafka status`` 3 (not running), ``consume`` 75 (stopped while
the store was failing, nothing lost), ``verify`` 2 (a divergence), 130 interrupted.
"""

from __future__ import annotations

import json
import signal
import sys
import threading
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, NoReturn

import typer
from typer.core import TyperGroup

from auditlog.durations import DURATION_HELP, InvalidDuration, format_duration, parse_duration
from auditlog.logs import configure_logging
from auditlog.progress import CommandProgress, waiting
from config.settings import get_settings
from query_api.security import WORKSPACE_ROLES
from schemas.contract import ACTOR_KINDS, WORKSPACE_ID_PATTERN, WORKSPACE_ID_RE
from transparency.cli import QUIET_HELP
from transparency.cli import add_commands as add_transparency_commands


class AuditlogGroup(TyperGroup):
    """Turns an exception escaping a command into its reason on stderr and exit 1 (2 stays usage).

    With AUDITLOG_LOG_LEVEL=DEBUG the traceback is shown instead.
    """

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except (typer.TyperException, typer.Exit, typer.Abort):
            raise
        except KeyboardInterrupt:
            raise typer.Exit(130) from None
        except Exception as err:  # the CLI's last line of defence: a message, not a traceback
            if _debugging():
                raise
            print(f"auditlog {ctx.invoked_subcommand}: {type(err).__name__}: {err}", file=sys.stderr)
            raise typer.Exit(1) from None


def _debugging() -> bool:
    """AUDITLOG_LOG_LEVEL=DEBUG; False when the settings themselves are what failed (their message is shown)."""
    try:
        return get_settings().log_level.upper() == "DEBUG"
    except ValueError:
        return False


app = typer.Typer(
    cls=AuditlogGroup,
    name="auditlog",
    help="Audit log: Kafka → ClickHouse → query API. Settings come from AUDITLOG_* variables and .env "
         "(config/settings.py).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",  # paragraphs of the docstrings are re-flowed to the terminal's width
)


@app.callback()
def _start() -> None:
    """Logging as configured, before any command runs."""
    configure_logging(get_settings().log_level)


def _finish(code: int) -> None:
    """End the command with ``code`` (0 returns normally)."""
    if code:
        raise typer.Exit(code)


def _usage_error(option: str, message: str) -> NoReturn:
    raise typer.BadParameter(message, param_hint=f"'{option}'")


# -- value parsers: each raises BadParameter, which Typer reports naming the option (exit 2) -------------------


def duration(text: str) -> timedelta:
    """A ``--ttl``-style option's value (auditlog/durations.py)."""
    try:
        return parse_duration(text)
    except InvalidDuration as err:
        raise typer.BadParameter(str(err)) from None


def json_object(text: str) -> dict[str, Any]:
    """A ``--before``/``--after`` value: a JSON object, or a message saying where the JSON breaks."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise typer.BadParameter(f"not valid JSON ({err.msg} at line {err.lineno} column {err.colno}): "
                                 f"expected an object such as '{{\"role\": \"admin\"}}'") from None
    if not isinstance(value, dict):
        raise typer.BadParameter(f"expected a JSON object such as '{{\"role\": \"admin\"}}', "
                                 f"got {type(value).__name__}")
    return value


def workspace_id(text: str) -> str:
    if not WORKSPACE_ID_RE.match(text):
        raise typer.BadParameter(f"{text!r} is not a workspace id (pattern {WORKSPACE_ID_PATTERN})")
    return text


def workspace_list(option: str, text: str) -> list[str]:
    """The ids of a comma-separated ``option`` value; a usage error naming ``option`` for a bad one."""
    ids = [w.strip() for w in text.split(",") if w.strip()]
    if not ids:
        _usage_error(option, "name at least one workspace id")
    try:
        return [workspace_id(w) for w in ids]
    except typer.BadParameter as err:
        _usage_error(option, err.message)


def action_name(text: str) -> str:
    from schemas.catalog import load_catalog

    if text not in load_catalog().actions:
        raise typer.BadParameter(f"{text!r} is not in the action catalog (schemas/catalog.json)")
    return text


def one_of(choices: tuple[str, ...]) -> Any:
    """A parser accepting exactly ``choices`` (their list is in the option's metavar and in the refusal)."""

    def parse(text: str) -> str:
        if text not in choices:
            raise typer.BadParameter(f"{text!r} is not one of {', '.join(choices)}")
        return text

    return parse


ROLE_CHOICES = WORKSPACE_ROLES
ACTOR_KIND_CHOICES = tuple(sorted(ACTOR_KINDS))

Quiet = Annotated[bool, typer.Option("--quiet", "-q", help=QUIET_HELP)]
Workspace = Annotated[str, typer.Option(parser=workspace_id, metavar="WORKSPACE_ID", help="the workspace id")]


# -- kafka ------------------------------------------------------------------------------------------------------

kafka_app = typer.Typer(help="The local single-node Kafka broker (development and `auditlog up`).",
                        no_args_is_help=True)
app.add_typer(kafka_app, name="kafka")


@kafka_app.command("start")
def kafka_start(quiet: Quiet = False) -> None:
    """Start the broker unless it runs (idempotent) and create the event and dead-letter topics."""
    from auditlog.embedded import local_kafka
    from consumer.topics import ensure_topics

    settings = get_settings()
    kafka = local_kafka(settings)
    with waiting("starting Kafka", quiet=quiet):
        started = kafka.start()
        ensure_topics(settings.kafka.bootstrap_servers, [settings.kafka.topic, settings.kafka.dlq_topic],
                      settings.kafka.partitions)
    print(f"kafka {'started' if started else 'already running'}: pid={kafka.pid()} "
          f"bootstrap={settings.kafka.bootstrap_servers} data={kafka.data_dir}")


@kafka_app.command("stop")
def kafka_stop() -> None:
    """Stop the broker by its pid (SIGTERM, then SIGKILL after 30 s)."""
    from auditlog.embedded import local_kafka

    print("kafka stopped" if local_kafka(get_settings()).stop() else "kafka was not running")


@kafka_app.command("status")
def kafka_status() -> None:
    """Say whether the broker runs and accepts a produce; exit 3 when it does not run."""
    from auditlog.embedded import local_kafka

    settings = get_settings()
    kafka = local_kafka(settings)
    pid = kafka.pid()
    if pid is None:
        print("kafka: not running")
        _finish(3)
    print(f"kafka: running pid={pid} bootstrap={settings.kafka.bootstrap_servers} "
          f"accepts_produce={kafka.accepts_produce()}")


# -- the pipeline -----------------------------------------------------------------------------------------------


@app.command()
def migrate(quiet: Quiet = False) -> None:
    """Apply the ClickHouse migrations (clickhouse/NNNN_*.sql), each once."""
    from clickhouse.client import get_client
    from clickhouse.migrations import migrate as apply

    ch = get_settings().clickhouse
    with waiting("applying migrations", quiet=quiet):
        applied = apply(get_client(ch.dsn, ch.uncompressed_cache_mb), ch.database, ch.table, cluster=ch.cluster,
                        retention_days=ch.retention_days)
    print(f"migrations applied: {', '.join(applied) if applied else 'none (up to date)'}")


@app.command()
def consume() -> None:
    """Run the consumer: Kafka → ClickHouse.

    SIGTERM finishes the batch, commits and exits 0; exit 75 when it stopped while the store was failing
    (nothing lost), 1 when it could not go on.
    """
    from consumer import build_consumer
    from transparency.service import start_sequencer

    settings = get_settings()
    # Handlers first: a SIGTERM while the consumer is being built still means "stop gracefully".
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    runner = build_consumer(settings, stop)
    if settings.consumer.metrics_port:
        from prometheus_client import start_http_server

        start_http_server(settings.consumer.metrics_port)
    sequencer = start_sequencer(settings, stop)  # appends what the consumer stores to the Merkle logs
    result = runner.run()
    stop.set()
    if sequencer is not None:
        sequencer.join(timeout=30)
    if not result.ok:
        print(f"auditlog consume: {result.reason}", file=sys.stderr)
        _finish(1 if result.fatal else 75)


@app.command()
def serve() -> None:
    """Run the query API alone, against a ClickHouse server (the embedded engine needs `auditlog up`)."""
    import uvicorn

    from query_api.app import build_context, create_app

    settings = get_settings()
    uvicorn.run(create_app(build_context(settings)), host=settings.api.host, port=settings.api.port,
                log_level="warning")


@app.command()
def up(
    no_kafka: Annotated[bool, typer.Option("--no-kafka", help="use the configured broker "
                                           "(AUDITLOG_KAFKA__BOOTSTRAP_SERVERS) instead of starting one")] = False,
    no_seed: Annotated[bool, typer.Option("--no-seed", help="do not seed the reference workspace")] = False,
) -> None:
    """Everything in one process: Kafka, migrations, consumer, API, a seeded workspace.

    The embedded default: a local Kafka broker, chDB in-process, the consumer and the API in one process, and
    a seeded reference workspace. The banner (URL, tokens) is printed once the seed is readable.
    """
    from auditlog.embedded import run_embedded

    _finish(run_embedded(get_settings(), start_kafka=not no_kafka, seed=not no_seed))


# -- events -----------------------------------------------------------------------------------------------------


@app.command()
def emit(
    workspace: Annotated[str, typer.Option(parser=workspace_id, metavar="WORKSPACE_ID",
                                           help="the workspace the action happened in")],
    action: Annotated[str, typer.Option(parser=action_name, metavar="ACTION",
                                        help="an action of the catalog (schemas/catalog.json), e.g. "
                                             "MEMBER_ROLE_CHANGED")],
    actor: Annotated[str, typer.Option(help="who acted: the actor's email or token name (shown on the page)")],
    target_id: Annotated[str, typer.Option(help="the id of what was acted on")],
    actor_id: Annotated[str | None, typer.Option(help="the actor's id [default: --actor]")] = None,
    actor_kind: Annotated[str, typer.Option(parser=one_of(ACTOR_KIND_CHOICES), metavar="|".join(ACTOR_KIND_CHOICES),
                                            help="what kind of actor acted")] = "user",
    target_display: Annotated[str | None, typer.Option(help="the target's name on the page "
                                                             "[default: --target-id]")] = None,
    before: Annotated[dict[str, Any] | None, typer.Option(parser=json_object, metavar="JSON",
                                                          help="the state before, a JSON object")] = None,
    after: Annotated[dict[str, Any] | None, typer.Option(parser=json_object, metavar="JSON",
                                                         help="the state after, a JSON object")] = None,
) -> None:
    """Emit one audit event through the producer (waits up to 30 s for the broker; undelivered → spool)."""
    from producers import Actor, AuditProducer

    with AuditProducer.from_settings(get_settings()) as producer:
        event_id = producer.emit(
            workspace_id=workspace,
            action=action,
            actor=Actor(actor_kind, actor_id or actor, actor),
            target_id=target_id,
            target_display=target_display or target_id,
            before=before,
            after=after,
        )
        left = producer.flush(30)
    print(f"emitted {event_id}" + (f" ({left} not yet delivered: spooled if it fails)" if left else ""))


@app.command()
def demo(
    workspaces: Annotated[str, typer.Option(metavar="WS[,WS...]", help="comma-separated workspace ids")] = "ws_demo",
    count: Annotated[int, typer.Option(min=1, help="how many events in all")] = 1000,
    days: Annotated[int, typer.Option(min=1, help="spread over this many days, ending now")] = 30,
    seed: Annotated[int, typer.Option(help="random seed: the same seed emits the same history")] = 7,
    quiet: Quiet = False,
) -> None:
    """Emit a realistic synthetic history (progress: events handed to the producer, with the rate)."""
    from producers import AuditProducer
    from producers.synthetic import EventGenerator

    names = workspace_list("--workspaces", workspaces)
    now = datetime.now(UTC)
    generator = EventGenerator(seed=seed)
    with AuditProducer.from_settings(get_settings()) as producer, \
            CommandProgress("emitting events", count, quiet=quiet) as progress:
        for event in generator.history(names, count, now - timedelta(days=days), now):
            producer.emit_event(event)
            progress.advance()
    print(f"emitted {count} events into {', '.join(names)}")


@app.command()
def token(
    workspace: Workspace,
    role: Annotated[str, typer.Option(parser=one_of(ROLE_CHOICES), metavar="|".join(ROLE_CHOICES),
                                      help="the role in the workspace: owners and admins read the audit log, "
                                           "a member gets the no-access message")] = "owner",
    user: Annotated[str, typer.Option(help="the user id (the token's sub)")] = "usr_cli",
    email: Annotated[str | None, typer.Option(help="the user's email [default: --user]")] = None,
    ttl: Annotated[timedelta, typer.Option(parser=duration, metavar="DURATION",
                                           help=f"how long the token is valid: {DURATION_HELP}; more than 0, "
                                                "at most the configured maximum (30d)")
                   ] = "12h",  # type: ignore[assignment]
) -> None:
    """Issue a bearer token (development and scripts), signed with the API's configured key.

    The lifetime is capped by AUDITLOG_API__TOKEN_MAX_TTL_SECONDS (default 30 days).
    """
    from auditlog.embedded import with_local_secrets
    from query_api.security import issue_token

    settings = get_settings()
    limit = timedelta(seconds=settings.api.token_max_ttl_seconds)
    if ttl <= timedelta(0):
        _usage_error("--ttl", "must be more than 0 (a token of no lifetime is born expired)")
    if ttl > limit:
        _usage_error("--ttl", f"{format_duration(ttl)} is longer than the limit, {format_duration(limit)} "
                              "(AUDITLOG_API__TOKEN_MAX_TTL_SECONDS)")
    # Where the published dev secret is configured, sign with the secret `auditlog up` generated (and uses).
    settings = with_local_secrets(settings)
    print(issue_token(settings.api, user_id=user, email=email or user, roles={workspace: role},
                      ttl_seconds=int(ttl.total_seconds())))


# -- recovery ---------------------------------------------------------------------------------------------------

spool_app = typer.Typer(help="Events the broker did not take in time, kept on disk by the producer.",
                        no_args_is_help=True)
app.add_typer(spool_app, name="spool")


@spool_app.command("status")
def spool_status() -> None:
    """How many events are spooled, left by killed replays, being replayed; damaged files."""
    from producers.spool import Spool

    status = Spool(get_settings().producer.spool_dir).status()
    print(f"spooled events: {status.total} (in the spool {status.spooled}, left by killed replays "
          f"{status.orphaned}, being replayed now {status.replaying}; damaged files {status.damaged_files})")


@spool_app.command("replay")
def spool_replay(quiet: Quiet = False) -> None:
    """Send every spooled event again (crash-safe); exit 1 if some are still spooled afterwards."""
    from producers.replay import replay
    from producers.spool import Spool

    settings = get_settings()
    status = Spool(settings.producer.spool_dir).status()
    with CommandProgress("replaying spooled events", status.spooled + status.orphaned, quiet=quiet) as progress:
        result = replay(settings, on_progress=progress.update)
    print(f"replayed {result.sent} spooled events from {result.files} file(s); {result.respooled} still spooled")
    _finish(0 if result.respooled == 0 else 1)


dlq_app = typer.Typer(help="The dead-letter topic: list poison messages, replay them after a fix.",
                      no_args_is_help=True)
app.add_typer(dlq_app, name="dlq")


@dlq_app.command("list")
def dlq_list(limit: Annotated[int, typer.Option(min=1, help="how many of the newest dead letters to show")] = 100,
             quiet: Quiet = False) -> None:
    """The newest dead letters: when, where from (topic/partition/offset), key, size, why."""
    from consumer.dlq_replay import list_dead_letters

    settings = get_settings()
    with waiting("reading the dead-letter topic", quiet=quiet):
        entries = list_dead_letters(settings, limit)
    for e in entries:
        when = e.dead_lettered_at.isoformat(timespec="seconds") if e.dead_lettered_at else "-"
        key = (e.key or b"").decode("utf-8", "replace")
        print(f"{when}  {e.source_topic}/{e.source_partition}/{e.source_offset}  key={key}  "
              f"size={e.size}  {e.reason}")
    print(f"{len(entries)} dead letter(s) shown from {settings.kafka.dlq_topic}")


@dlq_app.command("replay")
def dlq_replay(quiet: Quiet = False) -> None:
    """Re-publish every dead letter not replayed before to the main topic (after the cause is fixed)."""
    from consumer.dlq_replay import replay_dead_letters

    settings = get_settings()
    with CommandProgress("replaying dead letters", quiet=quiet) as progress:
        sent = replay_dead_letters(settings, on_progress=progress.update)
    print(f"replayed {sent} dead letter(s) from {settings.kafka.dlq_topic} to {settings.kafka.topic}")


def count_lines(lines: Iterable[bytes], label: str, quiet: bool) -> Iterator[bytes]:
    """``lines`` as they are read or written, with a running count and the rate on stderr."""
    with CommandProgress(label, quiet=quiet) as progress:
        for line in lines:
            yield line
            progress.advance()


add_transparency_commands(app, count_lines, lambda label, quiet: waiting(label, quiet=quiet))


def main(argv: list[str] | None = None) -> int:
    """The ``auditlog`` console script; returns the exit code instead of raising SystemExit."""
    try:
        app(args=argv, prog_name="auditlog")
    except SystemExit as done:
        return done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
