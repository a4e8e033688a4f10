"""The sequencer: appends every stored event, once, as the next leaf of its workspace's log.

It reads the events table, not the consumer: whatever path stored a row
(consumer, replayed spool, DLQ replay, a retried batch), the row becomes a leaf
the same way, and the consumer's code knows nothing of the log.

One round:

1. ``cutoff`` = the engine's ``now64()`` minus ``settle_seconds``. Only rows
   ingested at or before it are read: ``ingested_at`` is the insert's time, so
   an insert that started before the cutoff has committed by the time the
   round reads (inserts take milliseconds; settle defaults to 5 s). Reading
   by the engine's clock keeps the sequencer's own clock out of it.
2. Candidates: rows with ``start - overlap < ingested_at <= cutoff`` whose
   id has no leaf yet, one row per id, ordered by (ingested_at, workspace_id,
   occurred_at, id) — the log order. ``start`` is the previous caught-up
   round's cutoff (at start-up: the newest ingested_at already sequenced, read
   back from the leaves table). Ids sequenced inside the window are excluded
   in the engine; ids sequenced long ago (a spool replay re-inserting an old
   event) through the leaves' by-event projection. While a backlog lasts (a
   round took ``max_events_per_round`` rows) the next round goes on after the
   last row taken, so a catch-up never re-reads what it already took.
3. Leaves, then node hashes, then due checkpoints are written, in that order.
   A crash between any two writes leaves each workspace's leaves a prefix of
   what the round meant to write (each insert chunk is one part, chunks go in
   leaf order); the next run reads the tree size back from the leaves,
   recomputes missing nodes (``LogStore.repair_nodes``) and continues.
   Nothing is ever rewritten at an existing leaf index.
4. A workspace whose log grew gets a checkpoint once ``checkpoint_seconds``
   passed since its last one; each checkpoint is stored, then published on the
   checkpoint topic (a failed publication is retried next round).

A row that becomes visible later than ``settle + overlap`` after its
ingested_at is not sequenced; ``auditlog verify`` reports it as an event with
no leaf. Exactly one sequencer may run against a database.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from clickhouse_connect.driver.client import Client

from clickhouse.events import SELECT_COLUMNS
from config.settings import Settings, TransparencySettings
from transparency import metrics
from transparency.canonical import row_leaf_bytes
from transparency.checkpoint import Checkpoint, Signer
from transparency.errors import InvalidCanonicalForm, SequencerError
from transparency.merkle import Frontier, leaf_hash, read_subtrees
from transparency.store import LogStore, Tables

logger = logging.getLogger(__name__)

Publish = Callable[[Sequence[Checkpoint]], Sequence[Checkpoint]]  # returns the ones NOT published


@dataclass(frozen=True)
class Staged:
    """A round's rows, staged in the engine's round table: what Python needs to extend the trees.

    ``hashes``: (workspace_id, leaf hash or None when the event has no leaf form), grouped by workspace,
    each in log order. ``python_hashes``: the hashes Python computed, by event id (the rest the engine
    computed). ``newest``: the newest ingested_at staged.
    """

    hashes: list[tuple[str, bytes | None]]
    python_hashes: dict[str, bytes | None]
    newest: Any


# The log order (module docstring, step 2).
LOG_ORDER = "ingested_at, workspace_id, occurred_at, id"


@dataclass
class RoundStats:
    leaves: int = 0
    workspaces: int = 0
    nodes: int = 0
    checkpoints: list[Checkpoint] = field(default_factory=list)
    skipped: int = 0


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def tables_for(settings: Settings) -> Tables:
    return Tables(settings.clickhouse.database, settings.events_table)


class Sequencer:
    """Appends stored events to their workspaces' logs and signs checkpoints (see the module docstring).

    Not thread-safe; one instance per database. ``round()`` is one step (tests
    call it directly); ``run(stop)`` loops until ``stop`` is set.
    """

    def __init__(self, client: Client, settings: Settings, signer: Signer, publish: Publish | None = None) -> None:
        self._client = client
        self._cfg: TransparencySettings = settings.transparency
        self._tables = tables_for(settings)
        self.store = LogStore(client, self._tables)
        self._signer = signer
        self._publish = publish
        self._frontiers: dict[str, Frontier] = {}
        self._checkpointed: dict[str, tuple[int, float]] = {}  # ws -> (size, monotonic time of signing)
        self._pending: set[str] = set()  # workspaces whose log grew past their last checkpoint
        self._unpublished: list[Checkpoint] = []
        self._watermark: datetime | None = None
        # (ingested_at, workspace_id, occurred_at, id) of the last row taken while a backlog lasts.
        self._position: tuple[datetime, str, datetime, str] | None = None
        self._caught_up_to: datetime | None = None
        self._appended: dict[str, int] = {}  # leaves appended per workspace in the current round
        self._pending_cutoff: datetime | None = None
        self._started = False

    # --- state -------------------------------------------------------------------------------
    def _start(self) -> None:
        """Read back what a previous run left: watermark, sizes, last checkpoints."""
        self.store.ensure_round()
        self._watermark = self.store.watermark()
        sizes = self.store.sizes()
        latest = self.store.latest_checkpoints()
        for ws, (size, _when) in latest.items():
            self._checkpointed[ws] = (size, float("-inf"))
        self._pending = {ws for ws, n in sizes.items() if n > latest.get(ws, (0, None))[0]}
        self._started = True
        logger.info("sequencer_started workspaces=%d pending_checkpoints=%d key_id=%s",
                    len(sizes), len(self._pending), self._signer.key_id)

    def _reset(self) -> None:
        """Forget cached state after a failed round: the next round reads everything back."""
        self._frontiers.clear()
        self._position = None
        self._caught_up_to = self._pending_cutoff = None
        self._started = False

    def _frontier(self, workspace_id: str) -> Frontier:
        frontier = self._frontiers.get(workspace_id)
        if frontier is None:
            size = self.store.tree_size(workspace_id)
            repaired = self.store.repair_nodes(workspace_id, size)
            if repaired:
                logger.warning("sequencer_repaired_nodes workspace=%s size=%d nodes=%d", workspace_id, size, repaired)
            hashes = read_subtrees(self.store.reader(workspace_id), Frontier.positions(size), self.store.stride)
            frontier = Frontier(size, hashes)
            self._frontiers[workspace_id] = frontier
        return frontier

    # --- one round ---------------------------------------------------------------------------
    def candidates(self) -> Staged:
        """Rows to sequence now, in log order (see the module docstring, step 2).

        The round's rows are staged in the engine's round table, which hashes
        them on insert (``LogStore.ensure_round``); Python reads back only the
        workspace and leaf hash of each (in log order), and the event columns
        of the rare row the engine cannot spell. While a backlog lasts (a round
        filled ``max_events_per_round``), the next round continues after the
        last row it took instead of re-reading the window.
        """
        now = self._client.query("SELECT now64(3)").result_rows[0][0]
        cutoff = _utc(now) - timedelta(seconds=self._cfg.settle_seconds)
        # Everything ingested up to the last caught-up round's cutoff was read then; start a little before it.
        base = self._caught_up_to or self._watermark
        lower = base - timedelta(seconds=self._cfg.overlap_seconds) if base else None
        ev = self._tables.events
        window = "ingested_at <= {cutoff:DateTime64(3, 'UTC')}"
        params: dict[str, Any] = {"cutoff": cutoff.strftime("%Y-%m-%d %H:%M:%S.%f"),
                                  "limit": self._cfg.max_events_per_round}
        if lower is not None:
            window += " AND ingested_at > {lower:DateTime64(3, 'UTC')}"
            params["lower"] = _utc(lower).strftime("%Y-%m-%d %H:%M:%S.%f")
        choose = window
        if self._position is not None:
            at, ws, occurred, event_id = self._position
            choose += (" AND (ingested_at, workspace_id, occurred_at, id) > ({p_at:DateTime64(3, 'UTC')},"
                       " {p_ws:String}, {p_occ:DateTime64(6, 'UTC')}, {p_id:UUID})")
            params.update(p_at=_utc(at).strftime("%Y-%m-%d %H:%M:%S.%f"), p_ws=ws,
                          p_occ=_utc(occurred).strftime("%Y-%m-%d %H:%M:%S.%f"), p_id=event_id)
        elif lower is not None:
            choose += (f" AND id NOT IN (SELECT event_id FROM {self._tables.leaves}"
                       " WHERE ingested_at > {lower:DateTime64(3, 'UTC')})")
        else:
            choose += f" AND id NOT IN (SELECT event_id FROM {self._tables.leaves})"
        order = "ORDER BY ingested_at, workspace_id, occurred_at, id LIMIT 1 BY id"
        # The round's rows are chosen on four small columns (a backlog re-sorts only those), then read in full.
        chosen = (f"SELECT ingested_at, workspace_id, occurred_at, id FROM {ev} WHERE {choose} {order}"
                  " LIMIT {limit:UInt64}")
        # Ids sequenced before the window (an old event stored again) are staged but left out when the
        # staged rows are read and written (``LogStore.round_unsequenced``): a set built in the engine from
        # the staged ids, looked up through the leaves' by-event projection. (Passing the ids from Python
        # as an array literal cost ~13 µs an id to bind and minutes on a 2M-leaf log.)
        staged = self._tables.round
        self._client.command(f"TRUNCATE TABLE {staged}")
        self._client.command(
            f"INSERT INTO {staged} (ingested_at, workspace_id, {SELECT_COLUMNS})"
            f" SELECT ingested_at, workspace_id, {SELECT_COLUMNS} FROM {ev} WHERE {window}"
            f" AND (ingested_at, workspace_id, occurred_at, id) IN ({chosen}) {order}", parameters=params)
        count, newest = self._client.query(f"SELECT count(), max(ingested_at) FROM {staged}").result_rows[0]
        self._position = None
        if count >= self._cfg.max_events_per_round:
            last = self._client.query(f"SELECT ingested_at, workspace_id, occurred_at, id FROM {staged}"
                                      " ORDER BY ingested_at DESC, workspace_id DESC, occurred_at DESC, id DESC LIMIT 1"
                                      ).result_rows[0]
            self._position = (last[0], str(last[1]), last[2], str(last[3]))
        else:
            self._pending_cutoff = cutoff  # caught up to here once this round's leaves are written
        if not count:
            return Staged([], {}, None)
        # Per workspace, in log order: only what the Merkle tree needs (the ids stay in the engine).
        fresh = self.store.round_unsequenced
        rows = self._client.query(f"SELECT workspace_id, plain, leaf_hash, if(plain, '', toString(id)) FROM {staged}"
                                  f" WHERE {fresh} ORDER BY workspace_id, {LOG_ORDER}").result_rows
        odd = self._client.query(f"SELECT {SELECT_COLUMNS}, workspace_id FROM {staged} WHERE NOT plain AND {fresh}"
                                 ).result_rows
        fixed = {str(row[0]): self._python_hash(row) for row in odd}  # None: no leaf
        hashes = [(r[0], r[2] if r[1] else fixed[r[3]]) for r in rows]
        return Staged(hashes, fixed, newest)

    @staticmethod
    def _python_hash(row: Sequence[Any]) -> bytes | None:
        """The leaf hash of a row the engine cannot spell (``engine_leaf_sql``); None: it has no leaf form."""
        try:
            return leaf_hash(row_leaf_bytes(row, str(row[15])))
        except InvalidCanonicalForm:
            logger.exception("sequencer_unleafable_event workspace=%s id=%s", row[15], row[0])
            return None

    def round(self) -> RoundStats:
        """Sequence what is ready, write due checkpoints, publish; returns what it did."""
        if not self._started:
            self._start()
        stats = RoundStats()
        try:
            staged = self.candidates()
            node_rows: list[tuple[str, int, int, bytes]] = []
            grown: set[str] = set()
            stride = self.store.stride
            bases: dict[str, int] = {}
            self._appended = {}
            leaves = 0
            for ws, group in itertools.groupby(staged.hashes, key=lambda r: r[0]):
                frontier = self._frontier(ws)
                bases[ws] = before = frontier.size
                append = frontier.append
                for _ws, h in group:
                    if h is None:
                        stats.skipped += 1
                        continue
                    for level, node_index, value in append(h):
                        if level and level % stride == 0:
                            node_rows.append((ws, level, node_index, value))
                self._appended[ws] = frontier.size - before
                leaves += frontier.size - before
                grown.add(ws)
            if leaves:
                self._check_single_writer(grown)
                self.store.insert_staged_leaves(bases, staged.python_hashes, self._cfg.max_events_per_round)
                self.store.insert_nodes(node_rows)
                if self._watermark is None or staged.newest > self._watermark:
                    self._watermark = staged.newest
            if self._pending_cutoff is not None:
                self._caught_up_to, self._pending_cutoff = self._pending_cutoff, None
            stats.leaves, stats.nodes, stats.workspaces = leaves, len(node_rows), len(grown)
            self._pending |= grown
            stats.checkpoints = self._checkpoint_due()
        except Exception:
            self._reset()
            raise
        self._publish_pending(stats.checkpoints)
        metrics.LEAVES.inc(stats.leaves)
        metrics.CHECKPOINTS.inc(len(stats.checkpoints))
        metrics.LAST_ROUND.set_to_current_time()
        if stats.leaves or stats.checkpoints:
            # Every round of a busy log: DEBUG, the progress is in the metrics (transparency/metrics.py).
            logger.debug("sequencer_round leaves=%d workspaces=%d nodes=%d checkpoints=%d skipped=%d",
                        stats.leaves, stats.workspaces, stats.nodes, len(stats.checkpoints), stats.skipped)
        return stats

    def _check_single_writer(self, workspaces: set[str]) -> None:
        """Refuse to append when the stored logs grew behind this sequencer's back (a second sequencer).

        Not a lock (there is none in the engine): it narrows the window in which
        two sequencers could both append to milliseconds, and a conflict it
        misses shows up in ``auditlog verify`` as two leaves at one index.

        Raises:
            SequencerError: a workspace's stored size is not what this sequencer appended up to.
        """
        expected = {ws: self._frontiers[ws].size - n for ws, n in self._appended.items() if ws in workspaces}
        rows = self._client.query(
            f"SELECT workspace_id, max(leaf_index) + 1 FROM {self._tables.leaves}"
            " WHERE workspace_id IN {wss:Array(String)} GROUP BY workspace_id",
            parameters={"wss": sorted(expected)},
        ).result_rows
        stored = {str(ws): int(n) for ws, n in rows}
        for ws, size in expected.items():
            if stored.get(ws, 0) != size:
                raise SequencerError(
                    f"the log of {ws} holds {stored.get(ws, 0)} leaves where this sequencer expected {size}: "
                    "another sequencer is writing to the same database (run exactly one)"
                )

    def _checkpoint_due(self, force: bool = False) -> list[Checkpoint]:
        now = time.monotonic()
        signed: list[Checkpoint] = []
        for ws in sorted(self._pending):
            last_size, last_time = self._checkpointed.get(ws, (0, float("-inf")))
            if not force and now - last_time < self._cfg.checkpoint_seconds:
                continue
            frontier = self._frontier(ws)
            if frontier.size > last_size:
                cp = self._signer.sign(ws, frontier.size, frontier.root())
                self.store.insert_checkpoint(cp)
                signed.append(cp)
                self._checkpointed[ws] = (frontier.size, now)
            self._pending.discard(ws)
        return signed

    def checkpoint_now(self) -> list[Checkpoint]:
        """Sign every workspace whose log grew, ignoring the interval (shutdown, tests, the benchmark)."""
        if not self._started:
            self._start()
        signed = self._checkpoint_due(force=True)
        self._publish_pending(signed)
        return signed

    def _publish_pending(self, new: Sequence[Checkpoint]) -> None:
        if self._publish is None:
            return
        batch = [*self._unpublished, *new]
        if not batch:
            return
        try:
            self._unpublished = list(self._publish(batch))
        except Exception:
            logger.warning("checkpoint_publish_failed checkpoints=%d (retried next round)", len(batch), exc_info=True)
            self._unpublished = batch
        metrics.UNPUBLISHED.set(len(self._unpublished))
        if self._unpublished:
            logger.warning("checkpoint_publish_pending checkpoints=%d", len(self._unpublished))

    def run(self, stop: threading.Event) -> None:
        """Rounds every ``poll_seconds`` until ``stop``; a failed round is logged and retried with backoff."""
        delay = self._cfg.poll_seconds
        while not stop.is_set():
            try:
                stats = self.round()
                delay = self._cfg.poll_seconds
                if stats.leaves >= self._cfg.max_events_per_round:
                    continue  # a backlog: go on at once
            except Exception:
                metrics.ROUND_FAILURES.inc()
                logger.exception("sequencer_round_failed retry_in=%.1fs", delay)
                delay = min(delay * 2, 30.0)
            stop.wait(delay)
        try:
            self.checkpoint_now()
        except Exception:
            logger.warning("sequencer_final_checkpoint_failed", exc_info=True)
