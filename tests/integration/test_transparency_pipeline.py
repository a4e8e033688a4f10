"""The transparency log on the real pipeline: `auditlog consume` runs the sequencer; SIGKILLs during
ingestion never add, drop or reorder a leaf; checkpoints reach the Kafka topic; a dropped one is named."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest

from clickhouse.client import get_client
from config.settings import Settings
from tests.integration.test_consumer_crash import (
    REPO,
    _auditlog,
    _env,
    _wait,
    final_consumer,
    kill_consumers_while_producing,
)
from tests.support.consumer_checks import WORKSPACES, make_events
from tests.support.pipeline import produce, store_directly
from transparency.audit import verify_workspace
from transparency.service import build_sequencer, load_keyring, read_published

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse]

VERIFY = """
import json, sys
from config.settings import get_settings
from clickhouse.client import get_client
from transparency.audit import verify_workspace
from transparency.service import load_keyring, read_published
s = get_settings()
client = get_client(s.clickhouse.dsn)
out = {}
for ws in sys.argv[1:]:
    published = read_published(s.kafka.bootstrap_servers, s.transparency.topic, ws)
    report = verify_workspace(s, ws, load_keyring(s), published)
    leaves, distinct = client.query(
        "SELECT count(), uniqExact(event_id) FROM " + s.clickhouse.database + ".transparency_leaves"
        " WHERE workspace_id = {ws:String}", parameters={"ws": ws}).result_rows[0]
    events = client.query("SELECT uniqExact(id) FROM " + s.events_table + " WHERE workspace_id = {ws:String}",
                          parameters={"ws": ws}).result_rows[0][0]
    out[ws] = {"ok": report.ok, "summary": report.summary(), "size": report.tree_size, "leaves": int(leaves),
               "distinct": int(distinct), "events": int(events), "published": len(published)}
json.dump(out, sys.stdout)
"""


def _transparency_env(env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    return {**env, "AUDITLOG_TRANSPARENCY__SIGNING_KEY_FILE": str(tmp_path / "signing-key.pem"),
            "AUDITLOG_TRANSPARENCY__TOPIC": f"audit.checkpoints.t{uuid.uuid4().hex[:8]}",
            "AUDITLOG_TRANSPARENCY__SETTLE_SECONDS": "1", "AUDITLOG_TRANSPARENCY__CHECKPOINT_SECONDS": "1",
            "AUDITLOG_TRANSPARENCY__POLL_SECONDS": "0.3"}


@pytest.mark.slow
def test_sigkills_during_ingestion_leave_every_event_exactly_one_leaf_and_verify_passes(settings, tmp_path):
    dsn = f"chdb://{tmp_path / 'chdb'}"
    env = _transparency_env(_env(settings, dsn, batch_max_events="2000", batch_max_seconds="0.3"), tmp_path)
    assert _auditlog("migrate", env=env).wait(120) == 0
    events = make_events(100_000, seed=21)  # issue 16: SIGKILLs during 100k events
    ids: list[str] = []
    producing = threading.Thread(target=lambda: ids.extend(produce(settings, events)), daemon=True)
    producing.start()
    # Past start-up: the sequencer is mid-round at a random moment.
    kill_consumers_while_producing(env, producing, kills=4, alive=(2.0, 5.0))
    with final_consumer(settings, env, tmp_path / "final.log") as log:
        # settle (1 s) + a round + a checkpoint (1 s): then every stored event has its leaf
        _wait(lambda: b"sequencer_started" in log.read_bytes(), 60, "the sequencer to start")
        time.sleep(4)
    done = subprocess.run([sys.executable, "-c", VERIFY, *WORKSPACES], cwd=REPO, env=env, capture_output=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr.decode()[-3000:]
    result = json.loads(done.stdout)
    assert sum(r["events"] for r in result.values()) == len(set(ids)) == len(events)
    for ws, r in result.items():
        assert r["ok"], (ws, r["summary"])
        assert r["leaves"] == r["distinct"] == r["events"] == r["size"], (ws, r)
        assert r["published"] >= 1


def test_checkpoints_are_published_and_a_dropped_one_is_named(settings: Settings, tmp_path: Path) -> None:
    settings = settings.model_copy(update={"transparency": settings.transparency.model_copy(update={
        "signing_key_file": tmp_path / "key.pem", "settle_seconds": 0.0, "checkpoint_seconds": 0.001,
        "topic": f"audit.checkpoints.t{uuid.uuid4().hex[:8]}"})})
    sequencer = build_sequencer(settings)
    events = make_events(300, seed=4)
    for n in range(3):
        store_directly(settings, events[n * 100:(n + 1) * 100], token=f"b{n}")
        assert sequencer.round().checkpoints
    ws = WORKSPACES[0]
    published = read_published(settings.kafka.bootstrap_servers, settings.transparency.topic, ws)
    stored = sequencer.store.checkpoints(ws)
    assert [c.dumps() for c in published] == [c.dumps() for c in stored] and len(stored) == 3
    ring = load_keyring(settings)
    assert verify_workspace(settings, ws, ring, published).ok
    middle = stored[1].tree_size
    get_client(settings.clickhouse.dsn).command(
        f"ALTER TABLE {settings.clickhouse.database}.transparency_checkpoints DELETE WHERE workspace_id = "
        "{ws:String} AND tree_size = {n:UInt64}", parameters={"ws": ws, "n": middle}, settings={"mutations_sync": 2})
    report = verify_workspace(settings, ws, ring, read_published(settings.kafka.bootstrap_servers,
                                                                 settings.transparency.topic, ws))
    assert report.first is not None and report.first.leaf_index == middle
    assert "missing from the table (dropped)" in report.first.reason
