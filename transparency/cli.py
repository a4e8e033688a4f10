"""The ``auditlog verify`` and ``auditlog export-log`` commands (registered by auditlog/cli.py).

Exit codes: 0 verified, 2 a divergence was found (the report names the first
one: leaf index, event id, what is wrong), 1 the check could not run.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

from config.settings import Settings
from transparency.checkpoint import Keyring, load_public_key, public_pem
from transparency.verify import Report, load_checkpoints, verify_export

logger = logging.getLogger(__name__)

SHOWN = 20


def add_commands(sub: Any) -> None:
    """Register the commands on the ``auditlog`` sub-parser set."""
    verify = sub.add_parser(
        "verify", help="check a workspace's log against its signed checkpoints, or a log export offline",
        description="Online: --workspace WS (the stored log, the checkpoints, the checkpoint topic). "
                    "Offline: --export FILE --checkpoint CP.json --key PUB.pem (nothing but the files).")
    verify.add_argument("--workspace", help="verify the stored log of this workspace")
    verify.add_argument("--export", type=Path, help="a log export (JSONL) to verify offline")
    verify.add_argument("--checkpoint", type=Path, help="offline: a checkpoint JSON (one, a list, or the API's answer)")
    verify.add_argument("--key", type=Path, action="append", default=[],
                        help="offline: a trusted Ed25519 public key (PEM); repeat for rotated keys")
    verify.add_argument("--no-topic", action="store_true",
                        help="online: do not compare with the checkpoints published on the topic")
    verify.set_defaults(func=cmd_verify)

    sequence = sub.add_parser("sequence", help="run only the sequencer (one per deployment; SIGTERM stops it)")
    sequence.set_defaults(func=cmd_sequence)

    export = sub.add_parser("export-log", help="write a workspace's log export, its latest checkpoint and the "
                                               "public key, for offline verification")
    export.add_argument("--workspace", required=True)
    export.add_argument("--out", type=Path, required=True, help="the JSONL log export")
    export.add_argument("--checkpoint-out", type=Path, help="the latest checkpoint (the export is cut at its size)")
    export.add_argument("--key-out", type=Path, help="the public key (PEM)")
    export.set_defaults(func=cmd_export_log)


def print_report(report: Report) -> None:
    print(report.summary())
    for d in sorted(report.divergences, key=lambda d: (d.leaf_index is None, d.leaf_index or 0))[:SHOWN]:
        print(f"  - {d.describe()}")
    if len(report.divergences) > SHOWN:
        print(f"  ... and {len(report.divergences) - SHOWN} more")
    for note in report.notes[:SHOWN]:
        print(f"  note: {note}")


def cmd_verify(settings: Settings, args: argparse.Namespace) -> int:
    if args.export is not None:
        if args.checkpoint is None or not args.key:
            print("auditlog verify --export needs --checkpoint and at least one --key", file=sys.stderr)
            return 1
        ring = Keyring(load_public_key(path.read_bytes()) for path in args.key)
        checkpoints = load_checkpoints(args.checkpoint.read_text("utf-8"))
        with args.export.open("rb") as lines:
            report = verify_export(lines, checkpoints, ring)
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


def cmd_sequence(settings: Settings, _args: argparse.Namespace) -> int:
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


def cmd_export_log(settings: Settings, args: argparse.Namespace) -> int:
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
        for line in log_lines(settings, args.workspace, size):
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
