"""The ``auditlog verify``, ``auditlog sequence`` and ``auditlog export-log`` commands (registered by
auditlog/cli.py on its Typer app).

Exit codes: 0 verified, 2 a divergence was found (the report names the first
one: leaf index, event id, what is wrong), 1 the check could not run.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Annotated

import typer

from config.settings import Settings, get_settings
from transparency.checkpoint import Keyring, load_public_key, public_pem
from transparency.verify import Report, load_checkpoints, verify_export

logger = logging.getLogger(__name__)

SHOWN = 20
QUIET_HELP = "no progress on stderr (it is also off when stderr is not a terminal)"


# Progress displays, passed in by auditlog/cli.py (auditlog.progress: Rich on stderr; this layer may not
# import it). A LineCounter wraps lines being written or read: (lines, label, quiet) → the same lines.
# A Spinner shows that a step of unknown length runs: (label, quiet) → a context manager.
LineCounter = Callable[[Iterable[bytes], str, bool], Iterable[bytes]]
Spinner = Callable[[str, bool], AbstractContextManager[None]]


def _uncounted(lines: Iterable[bytes], _label: str, _quiet: bool) -> Iterable[bytes]:
    return lines


def _no_spinner(_label: str, _quiet: bool) -> AbstractContextManager[None]:
    return nullcontext()


def add_commands(app: typer.Typer, count_lines: LineCounter = _uncounted, spinner: Spinner = _no_spinner) -> None:
    """Register the commands on the ``auditlog`` Typer app; ``count_lines`` and ``spinner`` draw progress."""

    @app.command("verify")
    def verify(
        workspace: Annotated[str | None, typer.Option(help="online: verify the stored log of this workspace")
                             ] = None,
        export: Annotated[Path | None, typer.Option(help="offline: a log export (JSONL) to verify",
                                                    dir_okay=False)] = None,
        checkpoint: Annotated[Path | None, typer.Option(help="offline: a checkpoint JSON (one, a list, or the "
                                                             "API's answer)", dir_okay=False)] = None,
        key: Annotated[list[Path] | None, typer.Option(help="offline: a trusted Ed25519 public key (PEM); "
                                                            "repeat for rotated keys", dir_okay=False)] = None,
        no_topic: Annotated[bool, typer.Option("--no-topic", help="online: do not compare with the checkpoints "
                                                                  "published on the topic")] = False,
        quiet: Annotated[bool, typer.Option("--quiet", "-q", help=QUIET_HELP)] = False,
    ) -> None:
        """Check a workspace's log against its signed checkpoints, or a log export offline.

        Online: --workspace WS (the stored log, the checkpoints, the checkpoint topic). Offline: --export FILE
        --checkpoint CP.json --key PUB.pem (nothing but the files). Exit 2 names the first divergence; 1: the
        check could not run.
        """
        args = argparse.Namespace(workspace=workspace, export=export, checkpoint=checkpoint, key=key or [],
                                  no_topic=no_topic)
        online = export is None and workspace is not None  # offline, the lines are counted instead
        with spinner("verifying the stored log", quiet or not online):
            code = cmd_verify(get_settings(), args, lambda lines: count_lines(lines, "verifying log lines", quiet))
        if code:
            raise typer.Exit(code)

    @app.command("sequence")
    def sequence() -> None:
        """Run only the sequencer (one per deployment); SIGTERM stops it.

        For deployments whose consumers run with AUDITLOG_TRANSPARENCY__ENABLED=false.
        """
        cmd_sequence(get_settings())

    @app.command("export-log")
    def export_log(
        workspace: Annotated[str, typer.Option(help="the workspace whose log to export")],
        out: Annotated[Path, typer.Option(help="where to write the JSONL log export", dir_okay=False)],
        checkpoint_out: Annotated[Path | None, typer.Option(help="where to write the latest checkpoint (the "
                                                                 "export is cut at its size)", dir_okay=False)
                                  ] = None,
        key_out: Annotated[Path | None, typer.Option(help="where to write the public key (PEM)", dir_okay=False)
                           ] = None,
        quiet: Annotated[bool, typer.Option("--quiet", "-q", help=QUIET_HELP)] = False,
    ) -> None:
        """Write a workspace's log export, its latest checkpoint and the public key, for offline checks."""
        args = argparse.Namespace(workspace=workspace, out=out, checkpoint_out=checkpoint_out, key_out=key_out)
        code = cmd_export_log(get_settings(), args, lambda lines: count_lines(lines, "exporting log lines", quiet))
        if code:
            raise typer.Exit(code)


def print_report(report: Report) -> None:
    print(report.summary())
    for d in sorted(report.divergences, key=lambda d: (d.leaf_index is None, d.leaf_index or 0))[:SHOWN]:
        print(f"  - {d.describe()}")
    if len(report.divergences) > SHOWN:
        print(f"  ... and {len(report.divergences) - SHOWN} more")
    for note in report.notes[:SHOWN]:
        print(f"  note: {note}")


def cmd_verify(settings: Settings, args: argparse.Namespace,
               counted: Callable[[Iterable[bytes]], Iterable[bytes]] = lambda lines: lines) -> int:
    if args.export is not None:
        if args.checkpoint is None or not args.key:
            print("auditlog verify --export needs --checkpoint and at least one --key", file=sys.stderr)
            return 1
        ring = Keyring(load_public_key(path.read_bytes()) for path in args.key)
        checkpoints = load_checkpoints(args.checkpoint.read_text("utf-8"))
        with args.export.open("rb") as lines:
            report = verify_export(counted(lines), checkpoints, ring)
    elif args.workspace:
        from transparency.audit import verify_workspace
        from transparency.service import load_keyring, read_published

        published = None
        if not args.no_topic:
            try:
                published = read_published(settings.kafka.bootstrap_servers, settings.transparency.topic,
                                           args.workspace)
            except Exception as err:  # the table check still runs; say the topic was not compared
                logger.warning("checkpoint_topic_unreadable error=%s", err)
        report = verify_workspace(settings, args.workspace, load_keyring(settings), published)
        if published is None and not args.no_topic:
            report.notes.append("the checkpoint topic could not be read: not compared")
    else:
        print("auditlog verify needs --workspace, or --export with --checkpoint and --key", file=sys.stderr)
        return 1
    print_report(report)
    return 0 if report.ok else 2


def cmd_sequence(settings: Settings) -> int:
    """The sequencer alone: for deployments whose consumers run with AUDITLOG_TRANSPARENCY__ENABLED=false."""
    import signal
    import threading

    from transparency.service import build_sequencer

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    if settings.transparency.metrics_port:
        from prometheus_client import start_http_server

        start_http_server(settings.transparency.metrics_port)
    build_sequencer(settings).run(stop)
    return 0


def cmd_export_log(settings: Settings, args: argparse.Namespace,
                   counted: Callable[[Iterable[bytes]], Iterable[bytes]] = lambda lines: lines) -> int:
    from clickhouse.client import get_client
    from transparency.export import log_lines
    from transparency.sequencer import tables_for
    from transparency.service import load_signer
    from transparency.store import LogStore

    ch = settings.clickhouse
    store = LogStore(get_client(ch.dsn, ch.uncompressed_cache_mb), tables_for(settings))
    checkpoints = store.checkpoints(args.workspace)
    size = checkpoints[-1].tree_size if checkpoints else None
    lines = 0
    with args.out.open("wb") as out:
        for line in counted(log_lines(settings, args.workspace, size)):
            out.write(line)
            lines += 1
    if args.checkpoint_out is not None:
        if not checkpoints:
            print(f"no checkpoint for {args.workspace} yet", file=sys.stderr)
            return 1
        args.checkpoint_out.write_text(json.dumps(checkpoints[-1].to_json(), indent=2) + "\n")
    if args.key_out is not None:
        args.key_out.write_text(public_pem(load_signer(settings, generate=False).public_key))
    print(f"wrote {lines} line(s) of {args.workspace}'s log to {args.out}"
          + (f" (up to the checkpoint at size {size})" if size is not None else ""))
    return 0
