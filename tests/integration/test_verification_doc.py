"""docs/verification.md, followed step by step with only the standard library and `cryptography`.

The verifier below imports nothing from this project: it is what an auditor would write from the
document. It runs on a log the real engine and the real sequencer produced.
"""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

pytestmark = pytest.mark.clickhouse


# ---- the auditor's verifier: stdlib + cryptography only ----------------------------------------
def doc_key_id(key: Ed25519PublicKey) -> str:
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def doc_check_checkpoint(cp: dict, keys: list[Ed25519PublicKey]) -> None:  # step 1
    assert cp["format"] == "auditlog-checkpoint/v1" and cp["leaf_format"] == "v1"
    by_id = {doc_key_id(k): k for k in keys}
    key = by_id[cp["key_id"]]  # KeyError: signed by a key we do not trust
    body = (f"auditlog-checkpoint/v1\nworkspace {cp['workspace_id']}\nsize {cp['tree_size']}\n"
            f"root {cp['root_hash']}\ntime {cp['timestamp']}\nleaf-format v1\nkey {cp['key_id']}\n").encode()
    key.verify(base64.b64decode(cp["signature"]), body)  # raises InvalidSignature


def doc_number(x: float | int) -> str:  # step 2.3, numbers
    x = float(x)
    if x == 0:
        return "0"
    sign, x = ("-", -x) if x < 0 else ("", x)
    mant, _, exp = repr(x).partition("e")
    whole, _, frac = mant.partition(".")
    digits = (whole + frac).lstrip("0")
    # n: where the decimal point goes, counted from the first digit of d
    leading_zeros = 0 if whole.strip("0") else len(frac) - len(frac.lstrip("0"))
    n = (len(whole) if whole.strip("0") else 0) + int(exp or 0) - leading_zeros
    digits = digits.rstrip("0")
    k = len(digits)
    if k <= n <= 21:
        return sign + digits + "0" * (n - k)
    if 0 < n <= 21:
        return sign + digits[:n] + "." + digits[n:]
    if -6 < n <= 0:
        return sign + "0." + "0" * -n + digits
    e = n - 1
    return sign + digits[0] + ("." + digits[1:] if k > 1 else "") + ("e+" if e >= 0 else "e-") + str(abs(e))


def doc_jcs(v: object) -> str:  # step 2.3
    if v is None:
        return "null"
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, (int, float)):
        return doc_number(v)
    if isinstance(v, str):
        short = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r"}
        return '"' + "".join(short.get(c) or (f"\\u{ord(c):04x}" if c < " " else c) for c in v) + '"'
    if isinstance(v, list):
        return "[" + ",".join(doc_jcs(x) for x in v) + "]"
    assert isinstance(v, dict)
    names = sorted(v, key=lambda s: s.encode("utf-16-be"))
    return "{" + ",".join(doc_jcs(name) + ":" + doc_jcs(v[name]) for name in names) + "}"


def doc_leaf_hash(line: dict) -> bytes:  # step 2
    when = datetime.fromisoformat(line["occurred_at"].replace("Z", "+00:00")).astimezone(UTC)
    payload = line.get("payload") or {}
    context = line.get("context") or {}
    obj = {
        "id": str(uuid.UUID(line["id"])), "workspace_id": line["workspace_id"],
        "occurred_at": when.strftime("%Y-%m-%dT%H:%M:%S.%fZ"), "action": line["action"],
        "category": line["category"],
        "actor": {k: line["actor"][k] for k in ("kind", "id", "display")},
        "target": {k: line["target"][k] for k in ("kind", "id", "display")},
        "payload": {**payload, "before": payload.get("before"), "after": payload.get("after")},
        "context": {k: context.get(k, "") for k in ("ip", "user_agent", "request_id", "service")},
    }
    return hashlib.sha256(b"\x00" + doc_jcs(obj).encode("utf-8")).digest()


def doc_mth(hashes: list[bytes]) -> bytes:  # step 4
    if not hashes:
        return hashlib.sha256(b"").digest()
    if len(hashes) == 1:
        return hashes[0]
    k = 1
    while k * 2 < len(hashes):
        k *= 2
    return hashlib.sha256(b"\x01" + doc_mth(hashes[:k]) + doc_mth(hashes[k:])).digest()


def doc_verify(lines: list[bytes], cp: dict, keys: list[Ed25519PublicKey]) -> tuple[bool, str]:
    doc_check_checkpoint(cp, keys)
    placed: dict[int, bytes] = {}
    ids: set[str] = set()
    for n, raw in enumerate(lines):
        line = json.loads(raw)
        index = line.get("log_index", n)
        h = doc_leaf_hash(line)
        if index in placed:
            return False, f"leaf {index}: added"
        if line["id"] in ids:
            return False, f"leaf {index}: duplicated"
        if "leaf_hash" in line and line["leaf_hash"] != h.hex():
            return False, f"leaf {index}, event {line['id']}: edited"
        placed[index], _ = h, ids.add(line["id"])
    if sorted(placed) != list(range(len(placed))):
        return False, f"leaf {min(set(range(len(placed) + 1)) - set(placed))}: removed"
    size = cp["tree_size"]
    if len(placed) < size:
        return False, f"leaf {len(placed)}: removed"
    if doc_mth([placed[i] for i in range(size)]).hex() != cp["root_hash"]:
        return False, "root mismatch"
    return True, f"verified {size} leaves"


# ---- the log, made by the real engine and sequencer ---------------------------------------------
def test_the_documented_procedure_verifies_a_real_log_and_catches_tampering(clickhouse_settings) -> None:
    from clickhouse.client import get_client
    from producers.synthetic import EventGenerator
    from tests.support.pipeline import store_directly
    from transparency.checkpoint import Signer, public_pem
    from transparency.export import log_lines
    from transparency.sequencer import Sequencer

    settings = clickhouse_settings.model_copy(update={"transparency": clickhouse_settings.transparency.model_copy(
        update={"settle_seconds": 0.0})})
    start = datetime(2026, 2, 1, tzinfo=UTC)
    events = list(EventGenerator(seed=5).history(["ws_doc"], 333, start, start + timedelta(days=9)))
    store_directly(settings, events)
    signer = Signer.generate()
    Sequencer(get_client(settings.clickhouse.dsn), settings, signer).round()

    # What the auditor receives: three files' worth of bytes.
    from transparency.sequencer import tables_for
    from transparency.store import LogStore

    cp = json.loads(LogStore(get_client(settings.clickhouse.dsn), tables_for(settings)).checkpoints("ws_doc")[-1]
                    .dumps())
    lines = list(log_lines(settings, "ws_doc", cp["tree_size"]))
    key = serialization.load_pem_public_key(public_pem(signer.public_key).encode())
    assert isinstance(key, Ed25519PublicKey)

    assert doc_verify(lines, cp, [key]) == (True, "verified 333 leaves")
    # the awkward numbers of RFC 8785 come out as the document says
    assert [doc_number(x) for x in (1.0, 1e21, 1e-7, 0.000001, -0.0, 333333333.33333329, 2**53)] == \
        ["1", "1e+21", "1e-7", "0.000001", "0", "333333333.3333333", "9007199254740992"]

    edited = json.loads(lines[100])
    edited["actor"]["display"] = "someone.else@example.com"
    assert doc_verify([*lines[:100], json.dumps(edited).encode(), *lines[101:]], cp, [key]) == \
        (False, f"leaf 100, event {edited['id']}: edited")
    del edited["leaf_hash"]
    assert doc_verify([*lines[:100], json.dumps(edited).encode(), *lines[101:]], cp, [key]) == \
        (False, "root mismatch")
    assert doc_verify([*lines[:7], *lines[8:]], cp, [key]) == (False, "leaf 7: removed")
    assert doc_verify([*lines, lines[3]], cp, [key])[0] is False
    forged = dict(cp, tree_size=cp["tree_size"] - 1)
    with pytest.raises(InvalidSignature):
        doc_verify(lines, forged, [key])
    other = Signer.generate()
    other_key = serialization.load_pem_public_key(public_pem(other.public_key).encode())
    assert isinstance(other_key, Ed25519PublicKey)
    with pytest.raises(KeyError):
        doc_verify(lines, cp, [other_key])
