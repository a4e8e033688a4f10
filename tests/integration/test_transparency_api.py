"""The transparency endpoints: keys (open), checkpoints, proofs and the log export (owners and admins)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from clickhouse.client import get_client
from config.settings import Settings
from producers.synthetic import EventGenerator
from tests.support.pipeline import api_client, bearer, store_directly
from transparency.canonical import leaf_bytes
from transparency.checkpoint import Checkpoint, Keyring, Signer, load_public_key
from transparency.merkle import leaf_hash, verify_consistency, verify_inclusion
from transparency.sequencer import Sequencer
from transparency.verify import verify_export

pytestmark = pytest.mark.clickhouse

WS = "ws_api_log"


@pytest.fixture
def logged(clickhouse_settings: Settings, tmp_path: Path) -> tuple[Settings, Signer]:
    key = tmp_path / "signing.pem"
    signer = Signer.load_or_generate(key)
    settings = clickhouse_settings.model_copy(update={"transparency": clickhouse_settings.transparency.model_copy(
        update={"signing_key_file": key, "settle_seconds": 0.0, "checkpoint_seconds": 0.001})})
    start = datetime(2026, 4, 1, tzinfo=UTC)
    events = list(EventGenerator(seed=8).history([WS], 300, start, start + timedelta(days=4)))
    sequencer = Sequencer(get_client(settings.clickhouse.dsn), settings, signer)
    for n in range(3):
        store_directly(settings, events[n * 100:(n + 1) * 100], token=f"api-{n}")
        sequencer.round()
    return settings, signer


def test_keys_are_public_and_checkpoints_are_for_owners(logged: tuple[Settings, Signer]) -> None:
    settings, signer = logged
    client = api_client(settings)
    keys = client.get("/v1/audit/transparency/keys").json()["keys"]
    assert [(k["key_id"], k["current"]) for k in keys] == [(signer.key_id, True)]
    assert load_public_key(keys[0]["public_key_pem"]) is not None
    url = f"/v1/workspaces/{WS}/audit/checkpoints/latest"
    assert client.get(url).status_code == 401
    assert client.get(url, headers=bearer(settings, WS, role="member")).status_code == 403
    latest = client.get(url, headers=bearer(settings, WS)).json()
    Keyring([signer.public_key]).verify(Checkpoint.from_json(latest))
    assert latest["tree_size"] == 300
    listed = client.get(f"/v1/workspaces/{WS}/audit/checkpoints", headers=bearer(settings, WS)).json()
    assert [c["tree_size"] for c in listed["checkpoints"]] == [100, 200, 300]
    assert client.get(f"/v1/workspaces/{WS}/audit/checkpoints/200", headers=bearer(settings, WS)).json() == \
        listed["checkpoints"][1]
    missing = client.get(f"/v1/workspaces/{WS}/audit/checkpoints/201", headers=bearer(settings, WS))
    assert missing.status_code == 404 and "201" in missing.json()["message"]


def test_an_events_inclusion_proof_checks_against_the_signed_root(logged: tuple[Settings, Signer]) -> None:
    settings, _signer = logged
    client = api_client(settings)
    owner = bearer(settings, WS)
    page = client.get(f"/v1/workspaces/{WS}/audit/events", headers=owner, params={"limit": 7}).json()["data"]
    for event in page:
        for size in (None, 200):
            params = {"tree_size": size} if size else {}
            answer = client.get(f"/v1/workspaces/{WS}/audit/events/{event['id']}/proof", headers=owner,
                                params=params)
            if answer.status_code == 404:  # a leaf after the checkpoint of size 200
                assert size == 200 and "newer checkpoint" in answer.json()["message"]
                continue
            proof = answer.json()
            # The leaf is recomputed from the API's own JSON of the event: no trust in leaf_hash.
            h = leaf_hash(leaf_bytes(event))
            assert h.hex() == proof["leaf_hash"]
            verify_inclusion(h, proof["leaf_index"], proof["tree_size"], [bytes.fromhex(x) for x in
                             proof["audit_path"]], bytes.fromhex(proof["checkpoint"]["root_hash"]))


def test_consistency_proofs_and_the_log_export(logged: tuple[Settings, Signer]) -> None:
    settings, signer = logged
    client = api_client(settings)
    owner = bearer(settings, WS)
    answer = client.get(f"/v1/workspaces/{WS}/audit/consistency", headers=owner,
                        params={"from": 100, "to": 300}).json()
    verify_consistency(100, 300, bytes.fromhex(answer["from_checkpoint"]["root_hash"]),
                       bytes.fromhex(answer["to_checkpoint"]["root_hash"]), [bytes.fromhex(x) for x in answer["proof"]])
    backwards = client.get(f"/v1/workspaces/{WS}/audit/consistency", headers=owner, params={"from": 300, "to": 100})
    assert backwards.status_code == 400
    body = client.get(f"/v1/workspaces/{WS}/audit/log.jsonl", headers=owner, params={"tree_size": 200})
    assert body.status_code == 200
    lines = body.content.splitlines()
    assert len(lines) == 200
    cp = Checkpoint.from_json(client.get(f"/v1/workspaces/{WS}/audit/checkpoints/200", headers=owner).json())
    assert verify_export(lines, [cp], Keyring([signer.public_key])).ok
    paths = client.get("/openapi.json").json()["paths"]
    assert "/v1/workspaces/{workspace_id}/audit/events/{event_id}/proof" in paths
    assert "/v1/audit/transparency/keys" in paths
