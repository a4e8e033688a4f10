"""Tampering on the real engine is detected by `auditlog verify`, with the right event id and reason;
merges and re-inserted copies raise no false alarm. Offline: an edited, removed or added export line."""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from clickhouse.client import get_client
from clickhouse.events import COLUMNS, record_to_row
from config.settings import Settings
from producers.synthetic import EventGenerator
from tests.support.pipeline import store_directly
from transparency.audit import verify_workspace
from transparency.checkpoint import Checkpoint, Keyring, Signer, public_pem
from transparency.cli import cmd_verify
from transparency.export import log_lines
from transparency.sequencer import Sequencer
from transparency.verify import Report, verify_export

pytestmark = pytest.mark.clickhouse

WS = "ws_tamper"
T0 = datetime(2026, 3, 1, tzinfo=UTC)


class Log:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings.model_copy(update={"transparency": settings.transparency.model_copy(update={
            "settle_seconds": 0.0, "overlap_seconds": 3600.0, "checkpoint_seconds": 0.001})})
        self.client = get_client(settings.clickhouse.dsn)
        self.signer = Signer.generate()
        self.ring = Keyring([self.signer.public_key])
        self.published: list[Checkpoint] = []
        self.events = [*EventGenerator(seed=11).history([WS], 200, T0, T0 + timedelta(days=5)),
                       *EventGenerator(seed=12).history(["ws_other"], 60, T0, T0 + timedelta(days=5))]
        self.table = self.settings.events_table
        self.sequencer = self.new_sequencer()
        mine = [e for e in self.events if e.workspace_id == WS]
        others = [e for e in self.events if e.workspace_id != WS]
        store_directly(self.settings, others, token="others")
        for n, start in enumerate(range(0, len(mine), 50)):  # checkpoints at 50, 100, 150, ...
            store_directly(self.settings, mine[start:start + 50], token=f"batch-{n}")
            self.sequencer.round()
        self.size = len(mine)

    def new_sequencer(self) -> Sequencer:
        return Sequencer(self.client, self.settings, self.signer,
                         publish=lambda cps: self.published.extend(cps) or [])

    def leaf(self, index: int) -> str:
        return str(self.client.query(
            f"SELECT event_id FROM {self.settings.clickhouse.database}.transparency_leaves"
            " WHERE workspace_id = {ws:String} AND leaf_index = {i:UInt64}",
            parameters={"ws": WS, "i": index}).result_rows[0][0])

    def verify(self) -> Report:
        return verify_workspace(self.settings, WS, self.ring, published=self.published)

    def mutate(self, sql: str, **params: object) -> None:
        self.client.command(sql, parameters=params, settings={"mutations_sync": 2})


@pytest.fixture
def log(clickhouse_settings: Settings) -> Log:
    built = Log(clickhouse_settings)
    assert built.verify().ok
    return built


def first(report: Report) -> tuple[int | None, str | None, str]:
    assert not report.ok, "tampering went unnoticed"
    d = report.first
    assert d is not None
    return d.leaf_index, d.event_id, d.reason


def test_payload_edited_with_alter_update(log: Log) -> None:
    victim = log.leaf(77)
    log.mutate(f"ALTER TABLE {log.table} UPDATE payload = '{{\"before\":null,\"after\":{{\"role\":\"owner\"}}}}'"
               " WHERE id = {id:UUID}", id=victim)
    index, event_id, reason = first(log.verify())
    assert (index, event_id) == (77, victim) and "does not hash to its leaf" in reason


def test_row_deleted(log: Log) -> None:
    victim = log.leaf(12)
    log.mutate(f"ALTER TABLE {log.table} DELETE WHERE id = {{id:UUID}}", id=victim)
    index, event_id, reason = first(log.verify())
    assert (index, event_id) == (12, victim) and "deleted" in reason


def test_forged_row_inserted_behind_the_log(log: Log) -> None:
    forged = EventGenerator(seed=99).event(WS, T0 + timedelta(days=1))
    row = record_to_row(forged.to_record(), 1)
    ingested = T0 + timedelta(days=1)  # made to look old, so no sequencer round would pick it up
    log.client.insert(log.table, [[*row, ingested]], column_names=[*COLUMNS, "ingested_at"])
    assert log.new_sequencer().round().leaves == 0
    index, event_id, reason = first(log.verify())
    assert (index, event_id) == (None, str(forged.id)) and "in no leaf" in reason


def back_dated(log: Log, event_id: str, by: timedelta) -> tuple[list[str], list[object]]:
    """The stored row of an event (every column), with occurred_at moved back."""
    original = log.client.query(f"SELECT * FROM {log.table} WHERE id = {{id:UUID}}", parameters={"id": event_id})
    names = list(original.column_names)
    values = list(original.result_rows[0])
    values[names.index("occurred_at")] -= by
    return names, values


def test_row_back_dated(log: Log) -> None:
    victim = log.leaf(101)
    names, values = back_dated(log, victim, timedelta(days=30))
    log.mutate(f"ALTER TABLE {log.table} DELETE WHERE id = {{id:UUID}}", id=victim)
    log.client.insert(log.table, [values], column_names=names)
    index, event_id, reason = first(log.verify())
    assert (index, event_id) == (101, victim) and "does not hash to its leaf" in reason


def test_back_dated_copy_next_to_the_original(log: Log) -> None:
    victim = log.leaf(3)
    names, values = back_dated(log, victim, timedelta(hours=1))
    log.client.insert(log.table, [values], column_names=names)
    assert log.new_sequencer().round().leaves == 0  # an id that has a leaf never gets a second one
    index, event_id, reason = first(log.verify())
    assert (index, event_id) == (3, victim) and "2 different versions" in reason


def test_two_rows_swapped(log: Log) -> None:
    a, b = log.leaf(40), log.leaf(140)
    pa, pb = (log.client.query(f"SELECT payload, actor_display FROM {log.table} WHERE id = {{id:UUID}}",
                               parameters={"id": x}).result_rows[0] for x in (a, b))
    log.mutate(f"ALTER TABLE {log.table} UPDATE payload = {{p:String}}, actor_display = {{d:String}}"
               " WHERE id = {id:UUID}", p=pb[0], d=pb[1], id=a)
    log.mutate(f"ALTER TABLE {log.table} UPDATE payload = {{p:String}}, actor_display = {{d:String}}"
               " WHERE id = {id:UUID}", p=pa[0], d=pa[1], id=b)
    report = log.verify()
    index, event_id, reason = first(report)
    assert (index, event_id) == (40, a) and "does not hash" in reason
    assert {(d.leaf_index, d.event_id) for d in report.divergences} == {(40, a), (140, b)}


def test_checkpoint_edited(log: Log) -> None:
    cps = f"{log.settings.clickhouse.database}.transparency_checkpoints"
    log.mutate(f"ALTER TABLE {cps} UPDATE checkpoint = replace(checkpoint, '\"tree_size\":100', '\"tree_size\":99')"
               " WHERE workspace_id = {ws:String} AND tree_size = 100", ws=WS)
    report = log.verify()
    reasons = [d.reason for d in report.divergences]
    assert any("size 99: the signature does not verify" in r for r in reasons), reasons
    assert any("checkpoint at size 100" in r and "edited in the table" in r for r in reasons), reasons


def test_checkpoint_dropped(log: Log) -> None:
    cps = f"{log.settings.clickhouse.database}.transparency_checkpoints"
    log.mutate(f"ALTER TABLE {cps} DELETE WHERE workspace_id = {{ws:String}} AND tree_size = 150", ws=WS)
    index, _event_id, reason = first(log.verify())
    assert index == 150 and "published on the checkpoint topic is missing from the table (dropped)" in reason


def test_checkpoint_signed_with_another_key_over_a_rewritten_log(log: Log) -> None:
    victim = log.leaf(5)
    log.mutate(f"ALTER TABLE {log.table} UPDATE actor_display = 'nobody@example.com' WHERE id = {{id:UUID}}",
               id=victim)
    # The intruder also rewrites the leaf and signs a checkpoint for the rewritten log with their own key.
    from transparency.merkle import Frontier

    db = log.settings.clickhouse.database
    forged_leaf = log.client.query(
        f"SELECT leaf_hash FROM {db}.transparency_leaves WHERE event_id = {{id:UUID}}", parameters={"id": victim})
    assert forged_leaf.result_rows
    intruder = Signer.generate()
    frontier = Frontier()
    for _i, _e, h in log.sequencer.store.leaf_rows(WS):
        frontier.append(h)
    cp = intruder.sign(WS, frontier.size + 0, frontier.root())
    log.sequencer.store.insert_checkpoint(cp)
    report = log.verify()
    assert any(f"signed by key {intruder.key_id}, which is not a trusted key" in d.reason
               for d in report.divergences)
    assert (report.first.leaf_index, report.first.event_id) == (5, victim)  # type: ignore[union-attr]


def test_leaves_table_rewritten_to_match_an_edit(log: Log) -> None:
    from clickhouse.events import SELECT_COLUMNS, row_to_event
    from transparency.canonical import leaf_bytes
    from transparency.merkle import leaf_hash

    victim = log.leaf(66)
    log.mutate(f"ALTER TABLE {log.table} UPDATE target_display = 'elsewhere' WHERE id = {{id:UUID}}", id=victim)
    row = log.client.query(f"SELECT {SELECT_COLUMNS} FROM {log.table} WHERE id = {{id:UUID}}",
                           parameters={"id": victim}).result_rows[0]
    new_hash = leaf_hash(leaf_bytes(row_to_event(row, WS)))
    db = log.settings.clickhouse.database
    log.mutate(f"ALTER TABLE {db}.transparency_leaves UPDATE leaf_hash = unhex({{h:String}})"
               " WHERE event_id = {id:UUID}", h=new_hash.hex(), id=victim)
    index, _event_id, reason = first(log.verify())
    assert index == 50 and "root signed at size 100" in reason and "50..99" in reason  # the bracket holding 66


def test_no_false_alarm_after_optimize_final_and_reinserted_copies(log: Log) -> None:
    store_directly(log.settings, [e for e in log.events if e.workspace_id == WS], token="replayed-everything")
    db = log.settings.clickhouse.database
    for table in (log.table, f"{db}.transparency_leaves", f"{db}.transparency_nodes",
                  f"{db}.transparency_checkpoints"):
        log.client.command(f"OPTIMIZE TABLE {table} FINAL")
    assert log.new_sequencer().round().leaves == 0
    report = log.verify()
    assert report.ok, report.divergences
    assert report.tree_size == log.size and report.leaves_checked == log.size


def test_cli_verify_workspace_names_the_first_divergence(log: Log, capsys: pytest.CaptureFixture[str],
                                                         tmp_path: Path) -> None:
    key = tmp_path / "signing.pem"
    key.write_bytes(log.signer.private_pem())
    settings = log.settings.model_copy(update={"transparency": log.settings.transparency.model_copy(
        update={"signing_key_file": key})})
    args = argparse.Namespace(export=None, workspace=WS, no_topic=True, checkpoint=None, key=[])
    assert cmd_verify(settings, args) == 0
    assert f"OK: {WS} log verified up to size {log.size}" in capsys.readouterr().out
    victim = log.leaf(9)
    log.mutate(f"ALTER TABLE {log.table} DELETE WHERE id = {{id:UUID}}", id=victim)
    assert cmd_verify(settings, args) == 2
    out = capsys.readouterr().out
    assert f"leaf 9, event {victim}: the event of this leaf is gone from the events table" in out


# --- offline ------------------------------------------------------------------------------------
def test_offline_export_verifies_and_edits_are_named(log: Log, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    cp = log.sequencer.store.checkpoints(WS)[-1]
    lines = list(log_lines(log.settings, WS, cp.tree_size))
    assert len(lines) == log.size
    assert verify_export(lines, [cp], log.ring).ok

    export, cp_file, key = tmp_path / "events.jsonl", tmp_path / "cp.json", tmp_path / "pub.pem"
    cp_file.write_text(json.dumps(cp.to_json()))
    key.write_text(public_pem(log.signer.public_key))

    def run(content: list[bytes]) -> tuple[int, str]:
        export.write_bytes(b"".join(content))
        code = cmd_verify(log.settings, argparse.Namespace(export=export, checkpoint=cp_file, key=[key],
                                                           workspace=None, no_topic=True))
        return code, capsys.readouterr().out

    assert run(lines)[0] == 0

    edited = json.loads(lines[30])
    edited["payload"]["after"] = {"role": "owner"}
    code, out = run([*lines[:30], json.dumps(edited).encode() + b"\n", *lines[31:]])
    assert code == 2 and f"leaf 30, event {edited['id']}" in out and "edited" in out

    code, out = run([*lines[:31], *lines[32:]])
    removed = json.loads(lines[31])
    assert code == 2 and "leaf 31: leaf 31 is missing" in out and "removed" in out
    assert removed["id"] not in out.split("first:")[0]

    forged = dict(json.loads(lines[0]), id="01900000-0000-7000-8000-0000000000ff", log_index=len(lines))
    del forged["leaf_hash"]
    code, out = run([*lines, json.dumps(forged).encode() + b"\n"])
    assert code == 2 and f"leaf {len(lines)}, event {forged['id']}" in out and "past the signed size" in out
