"""Checkpoints (Ed25519, key ids, rotation) and the offline verifier on an edited/removed/added/reordered export."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from transparency.canonical import leaf_bytes
from transparency.checkpoint import Checkpoint, Keyring, Signer, key_id, load_public_key, public_pem
from transparency.errors import InvalidCheckpoint, SigningKeyError
from transparency.merkle import Frontier, leaf_hash
from transparency.verify import load_checkpoints, verify_export

WS = "ws_audit"


def make_events(n: int) -> list[dict]:
    t0 = datetime(2026, 3, 1, tzinfo=UTC)
    return [{
        "id": f"0190f0a0-0000-7000-8000-{i:012x}", "workspace_id": WS,
        "occurred_at": (t0 + timedelta(seconds=i)).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "action": "MEMBER_ROLE_CHANGED", "category": "members",
        "actor": {"kind": "user", "id": f"usr_{i}", "display": f"user{i}@example.com"},
        "target": {"kind": "user", "id": "usr_7", "display": "sam@example.com"},
        "payload": {"before": {"role": "member", "n": i}, "after": {"role": "admin", "score": 0.5}},
        "context": {"ip": "10.0.0.1", "user_agent": "ua", "request_id": f"req_{i}", "service": "svc"},
    } for i in range(n)]


def log_export(events: list[dict]) -> list[str]:
    return [json.dumps({**e, "log_index": i, "leaf_hash": leaf_hash(leaf_bytes(e)).hex()})
            for i, e in enumerate(events)]


def sign_prefixes(signer: Signer, events: list[dict], sizes: list[int]) -> list[Checkpoint]:
    f = Frontier()
    out = []
    for i, e in enumerate([*events, None]):
        if i in sizes:
            out.append(signer.sign(WS, i, f.root()))
        if e is not None:
            f.append(leaf_hash(leaf_bytes(e)))
    return out


@pytest.fixture
def signer() -> Signer:
    return Signer.generate()


def test_checkpoint_round_trip_signature_and_tamper(signer: Signer) -> None:
    cp = signer.sign(WS, 10, b"\x11" * 32)
    ring = Keyring([signer.public_key])
    again = Checkpoint.loads(cp.dumps())
    assert again == cp
    ring.verify(again)
    body = cp.body().decode()
    assert body.startswith("auditlog-checkpoint/v1\nworkspace ws_audit\nsize 10\nroot 1111")
    assert body.endswith(f"leaf-format v1\nkey {signer.key_id}\n")
    edited = json.loads(cp.dumps())
    edited["tree_size"] = 11
    with pytest.raises(InvalidCheckpoint, match="does not verify"):
        ring.verify(Checkpoint.from_json(edited))
    other = Signer.generate().sign(WS, 10, b"\x11" * 32)
    with pytest.raises(InvalidCheckpoint, match="not a trusted key"):
        ring.verify(other)
    forged = Checkpoint(WS, 10, b"\x11" * 32, other.timestamp, signer.key_id, other.signature)
    with pytest.raises(InvalidCheckpoint, match="does not verify"):
        ring.verify(forged)


def test_key_ids_files_and_rotation(tmp_path: Path, signer: Signer) -> None:
    path = tmp_path / "k" / "signing.pem"
    first = Signer.load_or_generate(path)
    assert path.stat().st_mode & 0o777 == 0o600
    assert Signer.load_or_generate(path).key_id == first.key_id
    assert Signer.from_pem(path.read_text()).key_id == first.key_id
    assert len(first.key_id) == 16 and first.key_id == key_id(load_public_key(public_pem(first.public_key)))
    old_cp = first.sign(WS, 1, b"\x00" * 32)
    rotated = Signer.generate()
    ring = Keyring([rotated.public_key, first.public_key])  # the new key and every old one
    ring.verify(old_cp)
    ring.verify(rotated.sign(WS, 2, b"\x00" * 32))
    with pytest.raises(SigningKeyError):
        Signer.from_pem("-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----\n")
    with pytest.raises(SigningKeyError):
        Signer.from_file(tmp_path / "missing.pem")


def test_checkpoint_json_is_checked() -> None:
    with pytest.raises(InvalidCheckpoint, match="format"):
        Checkpoint.from_json({"format": "other"})
    with pytest.raises(InvalidCheckpoint, match="no 'signature'"):
        Checkpoint.from_json({"format": "auditlog-checkpoint/v1", "workspace_id": "w", "tree_size": 1,
                              "root_hash": "00" * 32, "timestamp": "2026-01-01T00:00:00Z", "key_id": "k"})
    with pytest.raises(InvalidCheckpoint):
        load_checkpoints("not json")


def test_an_intact_export_verifies_against_every_checkpoint(signer: Signer) -> None:
    events = make_events(100)
    cps = sign_prefixes(signer, events, [0, 1, 37, 64, 100])
    report = verify_export(log_export(events), cps, Keyring([signer.public_key]))
    assert report.ok, report.divergences
    assert report.tree_size == 100 and report.leaves_checked == 100 and report.checkpoints_checked == 5
    # lines in another order but with their log_index: still the same log
    lines = log_export(events)
    assert verify_export(list(reversed(lines)), cps, Keyring([signer.public_key])).ok
    # a plain export in leaf order (no metadata) verifies too
    assert verify_export([json.dumps(e) for e in events], cps[-1:], Keyring([signer.public_key])).ok


def test_offline_tampering_is_named(signer: Signer) -> None:
    events = make_events(50)
    ring = Keyring([signer.public_key])
    cps = sign_prefixes(signer, events, [50])
    lines = log_export(events)

    edited = list(lines)
    line = json.loads(edited[17])
    line["payload"]["after"]["role"] = "owner"
    edited[17] = json.dumps(line)
    first = verify_export(edited, cps, ring).first
    assert first is not None and (first.leaf_index, first.event_id) == (17, events[17]["id"])
    assert "edited" in first.reason

    rehashed = dict(line, leaf_hash=leaf_hash(leaf_bytes(line)).hex())  # the editor also fixed leaf_hash
    edited[17] = json.dumps(rehashed)
    first = verify_export(edited, cps, ring).first
    assert first is not None and first.leaf_index == 0 and "root signed at size 50" in first.reason
    # with a checkpoint every 10 leaves the bracket narrows to the right ten
    first = verify_export(edited, sign_prefixes(signer, events, [10, 20, 30, 40, 50]), ring).first
    assert first is not None and first.leaf_index == 10 and "10..19" in first.reason

    removed = lines[:23] + lines[24:]
    first = verify_export(removed, cps, ring).first
    assert first is not None and first.leaf_index == 23 and "removed" in first.reason
    assert events[22]["id"] in first.reason and events[24]["id"] in first.reason

    forged = dict(json.loads(lines[5]), id="0190f0a0-0000-7000-8000-ffffffffffff")
    del forged["leaf_hash"]
    added = [*lines[:6], json.dumps(forged), *lines[6:]]
    first = verify_export(added, cps, ring).first
    assert first is not None and first.leaf_index == 5 and "added" in first.reason

    appended = [*lines, json.dumps(dict(forged, log_index=50))]
    first = verify_export(appended, cps, ring).first
    assert first is not None and first.leaf_index == 50 and "past the signed size" in first.reason

    plain = [json.dumps(e) for e in events]  # no log_index: file order is leaf order
    plain[3], plain[4] = plain[4], plain[3]
    first = verify_export(plain, cps, ring).first
    assert first is not None and "root signed at size 50" in first.reason

    swapped = list(lines)  # log_index swapped too: the leaf hashes no longer match their positions' leaves
    a, b = json.loads(lines[3]), json.loads(lines[4])
    a["log_index"], b["log_index"] = 4, 3
    swapped[3], swapped[4] = json.dumps(a), json.dumps(b)
    assert not verify_export(swapped, cps, ring).ok

    truncated = lines[:40]
    first = verify_export(truncated, cps, ring).first
    assert first is not None and first.leaf_index == 40 and "removed" in first.reason


def test_bad_checkpoints_are_divergences(signer: Signer) -> None:
    events = make_events(8)
    cps = sign_prefixes(signer, events, [8])
    edited = json.loads(cps[0].dumps())
    edited["root_hash"] = "00" * 32
    report = verify_export(log_export(events), [Checkpoint.from_json(edited)], Keyring([signer.public_key]))
    assert not report.ok and "does not verify" in report.divergences[0].reason
    report = verify_export(log_export(events), cps, Keyring([Signer.generate().public_key]))
    assert not report.ok and "not a trusted key" in report.divergences[0].reason
