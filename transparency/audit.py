"""Online verification (``auditlog verify --workspace ws``): the stored log against its signed checkpoints.

Three checks, all reported as ``verify.Divergence`` (first in leaf order wins):

1. Checkpoints: each stored one's Ed25519 signature with the trusted keys (the
   configured key and the previous public keys, never keys read from the
   table it vouches for); each one published on the checkpoint topic must be
   in the table unchanged (a dropped or edited row shows up here).
2. Leaves: indexes 0..n-1 each once (a second, different row at one index, a
   hole, or one event at two indexes is tampering), and the RFC 9162 root
   folded from the stored leaf hashes must equal the signed root at every
   checkpoint size.
3. Events against leaves: every copy of every stored event must hash to its
   leaf (an edited payload, a back-dated or swapped row does not); every leaf
   must still have its event (a deleted row); every event the sequencer has
   passed must have a leaf (a row inserted behind its back). Events are read
   in buckets of ids (``cityHash64(id) % k``) so memory stays bounded.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from clickhouse.client import get_client
from clickhouse.events import SELECT_COLUMNS
from config.settings import Settings
from transparency.canonical import row_leaf_bytes
from transparency.checkpoint import Checkpoint, Keyring
from transparency.errors import InvalidCanonicalForm
from transparency.merkle import leaf_hash
from transparency.sequencer import tables_for
from transparency.store import LogStore
from transparency.verify import Divergence, Report, check_checkpoints, check_roots

logger = logging.getLogger(__name__)

BUCKET_EVENTS = 200_000


def verify_workspace(settings: Settings, workspace_id: str, keyring: Keyring,
                     published: Sequence[Checkpoint] | None = None) -> Report:
    """Verify one workspace's stored log (see the module docstring).

    Args:
        published: the checkpoints read from the checkpoint topic (None: not compared).
    """
    ch = settings.clickhouse
    client = get_client(ch.dsn, ch.uncompressed_cache_mb)
    store = LogStore(client, tables_for(settings))
    report = Report(workspace_id)
    rows = store.checkpoint_rows(workspace_id)
    stored = [cp for _size, cp in rows]
    for size, cp in rows:
        if size != cp.tree_size:
            report.divergences.append(Divergence(size, None, f"the checkpoint row at size {size} holds a "
                                                 f"checkpoint for size {cp.tree_size}: it was edited"))
    good = check_checkpoints(stored, keyring, workspace_id, report)
    if published is not None:
        _compare_published(rows, published, keyring, report)

    leaves: dict[int, tuple[str, bytes]] = {}
    positions: dict[str, int] = {}
    named: set[int] = set()
    for index, event_id, h in store.leaf_rows(workspace_id):
        prior = leaves.get(index)
        if prior is not None:
            if prior != (event_id, h):
                report.divergences.append(Divergence(
                    index, event_id, f"a second, different leaf at this index (the other holds event {prior[0]}): "
                    "the leaves table was edited"))
                named.add(index)
            continue
        leaves[index] = (event_id, h)
        if event_id in positions:
            report.divergences.append(Divergence(index, event_id, f"the event is also the leaf at index "
                                                 f"{positions[event_id]}: an event is logged once"))
            named.add(index)
        else:
            positions[event_id] = index

    def in_order() -> Iterator[tuple[int, str, bytes]]:
        for expected in range(len(leaves)):
            leaf = leaves.get(expected)
            if leaf is None:
                report.divergences.append(Divergence(expected, None, "no leaf at this index: a leaf was deleted "
                                                     "from the leaves table"))
                named.add(expected)
                return
            yield expected, leaf[0], leaf[1]

    _check_events(settings, workspace_id, positions, leaves, store, report, named)
    report.leaves_checked = check_roots(in_order(), good, report, named)
    if good and report.leaves_checked > good[-1].tree_size:
        report.notes.append(f"{report.leaves_checked - good[-1].tree_size} newest leaves are not yet covered by "
                            "a signed checkpoint")
    logger.info("verify_workspace workspace=%s leaves=%d checkpoints=%d divergences=%d", workspace_id,
                report.leaves_checked, report.checkpoints_checked, len(report.divergences))
    return report


def _compare_published(stored: Sequence[tuple[int, Checkpoint]], published: Sequence[Checkpoint],
                       keyring: Keyring, report: Report) -> None:
    table = {(c.tree_size, c.root_hash, c.signature) for _size, c in stored}
    sizes = {size for size, _c in stored}
    for cp in published:
        if cp.workspace_id != report.workspace_id:
            continue
        try:
            keyring.verify(cp)
        except Exception as err:  # a bad copy on the topic is worth saying, not fatal
            report.notes.append(f"a checkpoint on the topic does not verify: {err}")
            continue
        if (cp.tree_size, cp.root_hash, cp.signature) in table:
            continue
        what = "was edited in the table" if cp.tree_size in sizes else "is missing from the table (dropped)"
        report.divergences.append(Divergence(
            cp.tree_size, None, f"the checkpoint at size {cp.tree_size} signed {cp.timestamp:%Y-%m-%dT%H:%M:%SZ} "
            f"and published on the checkpoint topic {what}"))


def _check_events(settings: Settings, workspace_id: str, positions: dict[str, int],
                  leaves: dict[int, tuple[str, bytes]], store: LogStore, report: Report, named: set[int]) -> None:
    client = store.client
    events = settings.events_table
    count, watermark = client.query(
        f"SELECT count(), (SELECT max(ingested_at) FROM {store.tables.leaves}) FROM {events}"
        " WHERE workspace_id = {ws:String}", parameters={"ws": workspace_id},
    ).result_rows[0]
    limit = _utc(watermark) - timedelta(seconds=settings.transparency.overlap_seconds) if watermark else None
    buckets = max(1, -(-int(count) // BUCKET_EVENTS), -(-len(positions) // BUCKET_EVENTS))
    seen: set[str] = set()
    for bucket in range(buckets):
        rows = client.query(
            f"SELECT {SELECT_COLUMNS}, ingested_at FROM {events} WHERE workspace_id = {{ws:String}}"
            " AND cityHash64(id) % {k:UInt64} = {b:UInt64}",
            parameters={"ws": workspace_id, "k": buckets, "b": bucket},
        ).result_rows
        versions: dict[str, set[bytes]] = {}
        oldest: dict[str, datetime] = {}
        for row in rows:
            event_id = str(row[0])
            try:
                h = leaf_hash(row_leaf_bytes(row, workspace_id))
            except InvalidCanonicalForm as err:
                h = b"unleafable:" + str(err).encode()
            versions.setdefault(event_id, set()).add(h)
            when = _utc(row[15])
            oldest[event_id] = min(when, oldest.get(event_id, when))
        for event_id, hashes in versions.items():
            seen.add(event_id)
            index = positions.get(event_id)
            if index is None:
                if limit is not None and oldest[event_id] <= limit:
                    report.divergences.append(Divergence(
                        None, event_id, f"the event (ingested_at {oldest[event_id]:%Y-%m-%dT%H:%M:%S.%fZ}) is in "
                        "the events table but in no leaf: it was inserted behind the log's back"))
                else:
                    report.notes.append(f"event {event_id} is not sequenced yet")
                continue
            stored_hash = leaves[index][1]
            if hashes != {stored_hash}:
                other = len(hashes - {stored_hash})
                copies = "" if len(hashes) == 1 else f" ({len(hashes)} different versions stored)"
                report.divergences.append(Divergence(
                    index, event_id, f"the stored event does not hash to its leaf{copies}: it was edited, "
                    f"back-dated or swapped after it was logged ({other} version(s) differ)"))
                named.add(index)
    for event_id, index in positions.items():
        if event_id not in seen:
            report.divergences.append(Divergence(index, event_id, "the event of this leaf is gone from the events "
                                                 "table: it was deleted"))
            named.add(index)


def _utc(moment: Any) -> datetime:
    assert isinstance(moment, datetime)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
