"""The transparency tables (clickhouse/0006_create_transparency_log.sql) through one client.

Reads never use FINAL: the verifier must see two different rows under one key
(tampering) rather than whichever a merge kept. Writers use plain inserts;
every row they write is fully determined by what is already stored, so writing
it twice is harmless (ReplacingMergeTree keys).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from clickhouse_connect.driver.client import Client

from transparency.canonical import engine_leaf_sql
from transparency.checkpoint import Checkpoint
from transparency.errors import MissingHash, SequencerError
from transparency.merkle import DEFAULT_STRIDE, Position, combine_subtree

# Rows per insert: each insert of this size is one block, so one part, so all-or-nothing.
INSERT_CHUNK = 50_000
# Reads of at most this many positions (a proof, a frontier) go in one query.
SMALL_READ = 4096


@dataclass(frozen=True)
class Tables:
    database: str
    events: str

    @property
    def leaves(self) -> str:
        return f"{self.database}.transparency_leaves"

    @property
    def nodes(self) -> str:
        return f"{self.database}.transparency_nodes"

    @property
    def checkpoints(self) -> str:
        return f"{self.database}.transparency_checkpoints"

    @property
    def round(self) -> str:
        """The sequencer's scratch table: one round's rows and their leaf hashes (``LogStore.ensure_round``)."""
        return f"{self.database}.transparency_round"


class LogStore:
    """One workspace log's stored hashes, leaves and checkpoints."""

    def __init__(self, client: Client, tables: Tables, stride: int = DEFAULT_STRIDE) -> None:
        self.client = client
        self.tables = tables
        self.stride = stride

    # --- reading -----------------------------------------------------------------------------
    def reader(self, workspace_id: str) -> WorkspaceHashes:
        return WorkspaceHashes(self, workspace_id)

    def tree_size(self, workspace_id: str) -> int:
        """How many leaves the workspace's log holds (0..n-1, contiguous).

        Raises:
            SequencerError: a hole in the leaf indexes (a deleted leaf, or a broken write).
        """
        distinct, top = self.client.query(
            f"SELECT uniqExact(leaf_index), max(leaf_index) FROM {self.tables.leaves}"
            " WHERE workspace_id = {ws:String}",
            parameters={"ws": workspace_id},
        ).result_rows[0]
        if not distinct:
            return 0
        if int(distinct) != int(top) + 1:
            raise SequencerError(
                f"the log of {workspace_id} has {distinct} leaves but its highest index is {top}: "
                "leaves are missing (run `auditlog verify --workspace` to see which)"
            )
        return int(distinct)

    def sizes(self) -> dict[str, int]:
        """Every workspace's leaf count (for start-up: which logs need a checkpoint)."""
        rows = self.client.query(
            f"SELECT workspace_id, max(leaf_index) + 1 FROM {self.tables.leaves} GROUP BY workspace_id"
        ).result_rows
        return {str(ws): int(n) for ws, n in rows}

    def watermark(self) -> datetime | None:
        """The newest ingested_at of any sequenced event (None: nothing sequenced yet)."""
        rows = self.client.query(f"SELECT count(), max(ingested_at) FROM {self.tables.leaves}").result_rows
        return rows[0][1] if rows and rows[0][0] else None

    def read_stored(self, workspace_id: str, positions: Sequence[Position]) -> list[bytes]:
        """Stored hashes at stored levels (0: leaves, multiples of the stride: nodes), in order.

        Raises:
            MissingHash: a position the store does not hold.
        """
        found: dict[Position, bytes] = {}
        if len(positions) <= SMALL_READ:
            found = self._read_small(workspace_id, positions)
            try:
                return [found[p] for p in positions]
            except KeyError as err:
                level, index = err.args[0]
                raise MissingHash(f"the log of {workspace_id} has no stored hash at level {level}, "
                                  f"index {index}") from err
        leaves = sorted({i for level, i in positions if level == 0})
        if leaves:
            for start in range(0, len(leaves), INSERT_CHUNK):
                part = leaves[start:start + INSERT_CHUNK]
                rows = self.client.query(
                    f"SELECT leaf_index, leaf_hash FROM {self.tables.leaves} WHERE workspace_id = {{ws:String}}"
                    " AND leaf_index >= {lo:UInt64} AND leaf_index <= {hi:UInt64}"
                    " AND leaf_index IN {ids:Array(UInt64)}",
                    parameters={"ws": workspace_id, "lo": part[0], "hi": part[-1], "ids": part},
                ).result_rows
                found.update(((0, int(i)), bytes(h)) for i, h in rows)
        by_level: dict[int, list[int]] = {}
        for level, index in positions:
            if level:
                by_level.setdefault(level, []).append(index)
        for level, indexes in by_level.items():
            rows = self.client.query(
                f"SELECT node_index, hash FROM {self.tables.nodes} WHERE workspace_id = {{ws:String}}"
                " AND level = {level:UInt8} AND node_index IN {ids:Array(UInt64)}",
                parameters={"ws": workspace_id, "level": level, "ids": sorted(set(indexes))},
            ).result_rows
            found.update(((level, int(i)), bytes(h)) for i, h in rows)
        try:
            return [found[p] for p in positions]
        except KeyError as err:
            level, index = err.args[0]
            raise MissingHash(f"the log of {workspace_id} has no stored hash at level {level}, index {index}") from err

    def _read_small(self, workspace_id: str, positions: Sequence[Position]) -> dict[Position, bytes]:
        """A proof's worth of stored hashes in one query (each query costs milliseconds of its own)."""
        leaves = sorted({i for level, i in positions if level == 0})
        levels = sorted({level for level, _ in positions if level})
        nodes = sorted({i for level, i in positions if level})
        parts: list[str] = []
        params: dict[str, Any] = {"ws": workspace_id}
        if leaves:
            parts.append(f"SELECT toUInt8(0) AS level, leaf_index AS idx, leaf_hash AS hash FROM {self.tables.leaves}"
                         " WHERE workspace_id = {ws:String} AND leaf_index IN {leaves:Array(UInt64)}")
            params["leaves"] = leaves
        if nodes:
            parts.append(f"SELECT level, node_index AS idx, hash FROM {self.tables.nodes} WHERE workspace_id ="
                         " {ws:String} AND level IN {levels:Array(UInt8)} AND node_index IN {nodes:Array(UInt64)}")
            params.update(levels=levels, nodes=nodes)
        if not parts:
            return {}
        rows = self.client.query(" UNION ALL ".join(parts), parameters=params).result_rows
        return {(int(level), int(i)): bytes(h) for level, i, h in rows}

    def leaf_of(self, workspace_id: str, event_id: str) -> int | None:
        """The leaf index of an event (None: not in the log)."""
        rows = self.client.query(
            f"SELECT leaf_index FROM {self.tables.leaves} WHERE event_id = {{id:UUID}} AND workspace_id = {{ws:String}}"
            " LIMIT 1",
            parameters={"id": event_id, "ws": workspace_id},
        ).result_rows
        return int(rows[0][0]) if rows else None

    def checkpoints(self, workspace_id: str, after_size: int = -1, limit: int | None = None) -> list[Checkpoint]:
        """The workspace's stored checkpoints by size (as stored: the signed JSON), all by default."""
        return [cp for _size, cp in self.checkpoint_rows(workspace_id, after_size, limit)]

    def checkpoint_rows(self, workspace_id: str, after_size: int = -1,
                        limit: int | None = None) -> list[tuple[int, Checkpoint]]:
        """(the row's tree_size column, the checkpoint its JSON holds), by size."""
        rows = self.client.query(
            f"SELECT tree_size, checkpoint FROM {self.tables.checkpoints} WHERE workspace_id = {{ws:String}}"
            " AND toInt64(tree_size) > {after:Int64} ORDER BY tree_size, timestamp"
            + ("" if limit is None else f" LIMIT {int(limit)}"),
            parameters={"ws": workspace_id, "after": after_size},
        ).result_rows
        return [(int(n), Checkpoint.loads(str(text))) for n, text in rows]

    def checkpoint(self, workspace_id: str, tree_size: int | None = None) -> Checkpoint | None:
        """The checkpoint at ``tree_size`` (None: the latest), read by key, not by listing them all."""
        where = "" if tree_size is None else " AND tree_size = {n:UInt64}"
        rows = self.client.query(
            f"SELECT checkpoint FROM {self.tables.checkpoints} WHERE workspace_id = {{ws:String}}{where}"
            " ORDER BY tree_size DESC, timestamp DESC LIMIT 1",
            parameters={"ws": workspace_id, "n": tree_size or 0},
        ).result_rows
        return Checkpoint.loads(str(rows[0][0])) if rows else None

    def latest_checkpoints(self) -> dict[str, tuple[int, datetime]]:
        rows = self.client.query(
            f"SELECT workspace_id, max(tree_size), max(timestamp) FROM {self.tables.checkpoints} GROUP BY workspace_id"
        ).result_rows
        return {str(ws): (int(n), t) for ws, n, t in rows}

    def leaf_rows(self, workspace_id: str, chunk: int = 200_000) -> Iterator[tuple[int, str, bytes]]:
        """(leaf_index, event_id, leaf_hash) in index order, every stored row (copies too)."""
        start = 0
        while True:
            rows = self.client.query(
                f"SELECT leaf_index, event_id, leaf_hash FROM {self.tables.leaves} WHERE workspace_id = {{ws:String}}"
                " AND leaf_index >= {lo:UInt64} AND leaf_index < {hi:UInt64} ORDER BY leaf_index, event_id",
                parameters={"ws": workspace_id, "lo": start, "hi": start + chunk},
            ).result_rows
            for i, e, h in rows:
                yield int(i), str(e), bytes(h)
            if not rows:
                more = self.client.query(
                    f"SELECT count() FROM {self.tables.leaves} WHERE workspace_id = {{ws:String}}"
                    " AND leaf_index >= {lo:UInt64}", parameters={"ws": workspace_id, "lo": start},
                ).result_rows[0][0]
                if not more:
                    return
            start += chunk

    # --- writing -----------------------------------------------------------------------------
    def ensure_round(self) -> None:
        """(Re)create the sequencer's scratch table: one round's events, their leaf hashes computed on insert.

        Memory engine: it holds one round and is refilled every round. Staging
        the round's rows in the engine lets it hash exactly those rows (the
        hash is a MATERIALIZED column, so it is computed after the round's
        LIMIT, not for every row of the window) and write their leaves itself
        (``insert_staged_leaves``) while Python reads only the hashes; both
        see the same rows whatever merges the events table does meanwhile.
        Dropped first so a changed leaf expression always takes effect.
        """
        plain, hashed = engine_leaf_sql()
        self.client.command(f"DROP TABLE IF EXISTS {self.tables.round}")
        self.client.command(
            f"CREATE TABLE {self.tables.round} (ingested_at DateTime64(3, 'UTC'), id UUID, workspace_id String,"
            " occurred_at DateTime64(6, 'UTC'), action String, category String, actor_kind String, actor_id String,"
            " actor_display String, target_kind String, target_id String, target_display String, payload String,"
            " ip String, user_agent String, request_id String, service String,"
            f" plain UInt8 MATERIALIZED {plain}, leaf_hash FixedString(32) MATERIALIZED {hashed}) ENGINE = Memory")

    def insert_staged_leaves(self, bases: dict[str, int], python_hashes: dict[str, bytes | None],
                             max_rows: int) -> None:
        """Write the staged round's leaves: leaf index = the workspace's size before + rank in log order.

        One INSERT … SELECT, squashed into one block (one part): a crash leaves
        the round's leaves all written or none. Events without a leaf form
        (None in ``python_hashes``) are left out before the ranks are counted.
        """
        fixed = {i: h.hex() for i, h in python_hashes.items() if h is not None}
        skipped = [i for i, h in python_hashes.items() if h is None]
        block = max(max_rows, 1) + 1
        self.client.command(
            f"INSERT INTO {self.tables.leaves} (workspace_id, leaf_index, event_id, leaf_hash, ingested_at)"
            " SELECT workspace_id, transform(workspace_id, {wss:Array(String)}, {bases:Array(UInt64)}, toUInt64(0))"
            " - 1 + row_number() OVER (PARTITION BY workspace_id ORDER BY ingested_at, occurred_at, id), id,"
            " if(plain, leaf_hash, toFixedString(unhex(transform(toString(id), {fixed_ids:Array(String)},"
            " {fixed_hex:Array(String)}, '')), 32)),"
            f" ingested_at FROM {self.tables.round} WHERE toString(id) NOT IN {{skipped:Array(String)}}"
            f" AND {self.round_unsequenced}",
            parameters={"wss": list(bases), "bases": list(bases.values()), "fixed_ids": list(fixed),
                        "fixed_hex": list(fixed.values()), "skipped": skipped},
            settings={"max_insert_block_size": block, "min_insert_block_size_rows": block,
                      "min_insert_block_size_bytes": 1 << 40},
        )

    @property
    def round_unsequenced(self) -> str:
        """The staged rows whose id has no leaf yet (an old event stored again is staged, never sequenced)."""
        return (f"id NOT IN (SELECT event_id FROM {self.tables.leaves} WHERE event_id IN"
                f" (SELECT id FROM {self.tables.round}))")

    def insert_nodes(self, rows: Sequence[tuple[str, int, int, bytes]]) -> None:
        for start in range(0, len(rows), INSERT_CHUNK):
            self.client.insert(self.tables.nodes, list(zip(*rows[start:start + INSERT_CHUNK], strict=True)),
                               column_names=["workspace_id", "level", "node_index", "hash"], column_oriented=True)

    def insert_checkpoint(self, cp: Checkpoint) -> None:
        self.client.insert(
            self.tables.checkpoints,
            [[cp.workspace_id, cp.tree_size, cp.root_hash, cp.timestamp, cp.key_id, cp.signature.hex(), cp.dumps()]],
            column_names=["workspace_id", "tree_size", "root_hash", "timestamp", "key_id", "signature", "checkpoint"],
        )

    def repair_nodes(self, workspace_id: str, size: int) -> int:
        """Write every stored-level node hash a log of ``size`` leaves should have and lacks; returns how many.

        After a crash between the leaves insert and the nodes insert, the newest
        nodes are missing; they are recomputed bottom-up from the stored level
        below (the leaves for the first stored level).
        """
        rows = self.client.query(
            f"SELECT level, max(node_index) + 1 FROM {self.tables.nodes} WHERE workspace_id = {{ws:String}}"
            " GROUP BY level",
            parameters={"ws": workspace_id},
        ).result_rows
        have = {int(level): int(n) for level, n in rows}
        written = 0
        level = self.stride
        while size >> level:
            want = size >> level
            start = have.get(level, 0)
            if start < want:
                fan = 1 << self.stride
                below = level - self.stride
                for lo in range(start, want, 4096):
                    hi = min(want, lo + 4096)
                    child = self.read_stored(workspace_id, [(below, j) for j in range(lo * fan, hi * fan)])
                    new = [(workspace_id, level, i, combine_subtree(child[(i - lo) * fan:(i - lo + 1) * fan]))
                           for i in range(lo, hi)]
                    self.insert_nodes(new)
                    written += len(new)
            level += self.stride
        return written


class WorkspaceHashes:
    """A ``merkle.HashReader`` over one workspace's stored hashes."""

    def __init__(self, store: LogStore, workspace_id: str) -> None:
        self._store = store
        self._ws = workspace_id

    def read_hashes(self, positions: Sequence[Position]) -> list[bytes]:
        return self._store.read_stored(self._ws, positions)
