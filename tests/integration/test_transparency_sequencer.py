"""The sequencer on the real engine: each stored event becomes one leaf, once, in a fixed order; crash-safe."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from clickhouse.client import get_client
from config.settings import Settings
from producers.synthetic import EventGenerator
from tests.support.pipeline import store_directly
from transparency.audit import verify_workspace
from transparency.checkpoint import Keyring, Signer
from transparency.merkle import Frontier, consistency_proof, inclusion_proof, verify_consistency, verify_inclusion
from transparency.sequencer import Sequencer
from transparency.store import LogStore

pytestmark = pytest.mark.clickhouse

T0 = datetime(2026, 3, 1, tzinfo=UTC)


def fast(settings: Settings) -> Settings:
    return settings.model_copy(update={"transparency": settings.transparency.model_copy(update={
        "settle_seconds": 0.0, "overlap_seconds": 5.0, "checkpoint_seconds": 0.001})})


def history(ws: list[str], n: int, seed: int = 3):
    return list(EventGenerator(seed=seed).history(ws, n, T0, T0 + timedelta(days=3)))


def test_events_become_leaves_once_and_proofs_verify(clickhouse_settings: Settings) -> None:
    settings = fast(clickhouse_settings)
    client = get_client(settings.clickhouse.dsn)
    signer = Signer.generate()
    published: list = []
    seq = Sequencer(client, settings, signer, publish=lambda cps: published.extend(cps) or [])
    events = history(["ws_a", "ws_b"], 700)
    store_directly(settings, events[:400], token="one")
    first = seq.round()
    assert first.leaves == 400 and {c.workspace_id for c in first.checkpoints} == {"ws_a", "ws_b"}
    store_directly(settings, events[:400], token="again")  # a redelivered batch: copies, no new leaves
    store_directly(settings, events[400:], token="two")
    second = seq.round()
    assert second.leaves == 300
    assert seq.round().leaves == 0
    assert published == first.checkpoints + second.checkpoints

    store = LogStore(client, seq.store.tables)
    ring = Keyring([signer.public_key])
    for ws in ("ws_a", "ws_b"):
        report = verify_workspace(settings, ws, ring, published=published)
        assert report.ok, report.divergences
        n = store.tree_size(ws)
        assert n == sum(1 for e in events if e.workspace_id == ws)
        cps = store.checkpoints(ws)
        latest = cps[-1]
        assert latest.tree_size == n
        reader = store.reader(ws)
        for index in (0, n // 3, n - 1):
            leaf = store.read_stored(ws, [(0, index)])[0]
            verify_inclusion(leaf, index, n, inclusion_proof(reader, index, n), latest.root_hash)
        verify_consistency(cps[0].tree_size, n, cps[0].root_hash, latest.root_hash,
                           consistency_proof(reader, cps[0].tree_size, n))


def test_a_crash_between_leaves_and_nodes_is_repaired_without_changing_a_leaf(clickhouse_settings: Settings) -> None:
    settings = fast(clickhouse_settings)
    client = get_client(settings.clickhouse.dsn)
    signer = Signer.generate()
    events = history(["ws_c"], 600, seed=5)
    store_directly(settings, events[:300], token="a")
    Sequencer(client, settings, signer).round()

    store_directly(settings, events[300:], token="b")
    crashing = Sequencer(client, settings, signer)

    def crash(_rows: object) -> None:
        raise RuntimeError("killed between the leaves and the nodes")

    crashing.store.insert_nodes = crash  # type: ignore[method-assign,assignment]
    with pytest.raises(RuntimeError):
        crashing.round()
    # A fresh process: reads the size back, recomputes the missing nodes, signs the rest.
    restarted = Sequencer(client, settings, signer)
    stats = restarted.round()
    assert stats.leaves == 0 and len(stats.checkpoints) == 1 and stats.checkpoints[0].tree_size == 600
    store = restarted.store
    leaves = [h for _, _, h in store.leaf_rows("ws_c")]
    assert len(leaves) == 600
    reference = Frontier()
    for h in leaves:
        reference.append(h)
    assert stats.checkpoints[0].root_hash == reference.root()
    assert verify_workspace(settings, "ws_c", Keyring([signer.public_key])).ok
    reader = store.reader("ws_c")
    verify_inclusion(leaves[517], 517, 600, inclusion_proof(reader, 517, 600), reference.root())


def test_a_backlog_is_taken_in_rounds_in_log_order_without_repeats(clickhouse_settings: Settings) -> None:
    settings = fast(clickhouse_settings)
    settings = settings.model_copy(update={"transparency": settings.transparency.model_copy(
        update={"max_events_per_round": 64})})
    client = get_client(settings.clickhouse.dsn)
    # A merge keeps the later copy (and its later ingested_at): stop merges so the expected order below,
    # recomputed from the table, is the order the rows had when they were sequenced.
    client.command(f"SYSTEM STOP MERGES {settings.events_table}")
    events = history(["ws_d", "ws_e"], 500, seed=9)
    for n in range(5):
        store_directly(settings, events[n * 100:(n + 1) * 100], token=f"backlog-{n}")
    store_directly(settings, events[:250], token="copies")  # copies of already stored events
    seq = Sequencer(client, settings, Signer.generate())
    taken = []
    while (stats := seq.round()).leaves:
        taken.append(stats.leaves)
    assert sum(taken) == 500 and max(taken) == 64
    expected = [str(r[0]) for r in client.query(
        f"SELECT id, workspace_id FROM {settings.events_table} ORDER BY ingested_at, workspace_id, occurred_at, id"
        " LIMIT 1 BY id").result_rows]
    for ws in ("ws_d", "ws_e"):
        logged = [e for _i, e, _h in seq.store.leaf_rows(ws)]
        assert logged == [i for i in expected if i in set(logged)]
        assert len(logged) == len(set(logged)) == sum(1 for e in events if e.workspace_id == ws)
