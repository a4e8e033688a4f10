"""The Audit page's proof code (query_api/static/proof.js) in real Chromium, against the Python reference.

What the page computes must be byte-identical with what the sequencer and
``auditlog verify`` compute (transparency/canonical.py, transparency/merkle.py,
transparency/checkpoint.py), or a customer's browser would raise false alarms
(or miss real ones). proof.js runs here on its own, served from an https
origin the test routes (a secure context, so WebCrypto is on), with no app
and no engine behind it.

The events are parsed by ``JSON.parse`` in the page, from the text an API
would send: integers beyond 2^53 come back as the nearest double there, which
is exactly the precision JCS compares numbers at, so they must still agree.
Where the browser cannot reproduce the bytes (a lone surrogate, a number
beyond a double's range, a time spelling the page does not read), the page
must say so (``null`` here), never produce other bytes.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from playwright.sync_api import Browser, Page, Route

from transparency.canonical import leaf_bytes
from transparency.checkpoint import Signer, public_pem
from transparency.errors import InvalidCanonicalForm
from transparency.merkle import MemoryHashes, consistency_proof, inclusion_proof, leaf_hash, tree_hash

pytestmark = pytest.mark.browser

PROOF_JS = Path(__file__).resolve().parents[3] / "query_api" / "static" / "proof.js"
ORIGIN = "https://proof.test"
SAFE = 2**53

# Each text: the page's leaf text (or null when it cannot check) and the hex leaf hash.
LEAVES_JS = """async (texts) => Promise.all(texts.map(async (text) => {
  let leaf;
  try {
    leaf = AuditProof.leafText(JSON.parse(text));
  } catch (err) {
    if (err instanceof AuditProof.CannotCheck) return [null, null];
    return ["ERROR " + err, null];
  }
  const hash = await AuditProof.leafHash(new TextEncoder().encode(leaf));
  return [leaf, AuditProof.toHex(hash)];
}))"""


@pytest.fixture(scope="module")
def proof_page(chromium: Browser) -> Iterator[Page]:
    """A blank https page with proof.js loaded (and nothing else)."""
    context = chromium.new_context()
    page = context.new_page()

    def fulfil(route: Route) -> None:
        if route.request.url.endswith("/proof.js"):
            route.fulfill(body=PROOF_JS.read_text("utf-8"), content_type="text/javascript")
        else:
            route.fulfill(body='<!doctype html><meta charset="utf-8"><script src="/proof.js"></script>',
                          content_type="text/html")

    page.route(f"{ORIGIN}/**", fulfil)
    page.goto(f"{ORIGIN}/")
    assert page.evaluate("window.isSecureContext && typeof AuditProof === 'object'")
    try:
        yield page
    finally:
        context.close()


def python_leaf(text: str) -> tuple[str | None, str | None]:
    """What transparency/canonical.py makes of the same text; (None, None) where it refuses the event."""
    try:
        data = leaf_bytes(json.loads(text))
    except InvalidCanonicalForm:
        return None, None
    return data.decode("utf-8"), leaf_hash(data).hex()


def assert_same_leaves(page: Page, texts: list[str]) -> None:
    got = page.evaluate(LEAVES_JS, texts)
    for text, js in zip(texts, got, strict=True):
        assert tuple(js) == python_leaf(text), text


# ---- events --------------------------------------------------------------------------------------
_BASE = datetime(2026, 3, 1, tzinfo=UTC)
awkward_ints = st.sampled_from([SAFE - 1, SAFE, SAFE + 1, -SAFE - 1, 2**63 - 1, -(2**63), 2**64 - 1, 2**64 + 1,
                                2**70 + 3, 10**21, 10**21 + 1, 10**400, -(10**400), 0, -1])
awkward_floats = st.sampled_from([-0.0, 0.0, 5e-324, 2.2250738585072014e-308, 1e-7, 1e-6, 0.000001234, 1 / 3,
                                  1e21, 1e20, 123456789012345680000.0, 1.7976931348623157e308, -1.5, 1.0,
                                  9007199254740993.0, 4.35, 0.1 + 0.2])
scalars = st.one_of(
    st.none(), st.booleans(), awkward_ints, st.integers(), awkward_floats,
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(), st.text(st.characters(codec="utf-8")),
    st.text(st.characters(categories=["Cc", "Cs", "Co", "Zl", "Zp"]), max_size=4),
    st.sampled_from(["\u2028", "\u2029", "\x7f", "\"\\/", "\ud83d\ude00", "\ue000", "\ud800", "é", "e\u0301"]),
)
keys = st.one_of(st.text(max_size=6), st.sampled_from(["\ue000", "\U0001f600", "\uffff", "a", "A", "", "__proto__",
                                                       "constructor", "10", "2", "before"]))
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4) |
                           st.dictionaries(keys, inner, max_size=4), max_leaves=12)


def _time_text(moment: datetime, spelling: int) -> str:
    if spelling == 0:
        return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    if spelling == 1:
        return moment.replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")
    if spelling == 2:
        return moment.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    offset = timedelta(hours=5, minutes=30) if spelling == 3 else -timedelta(hours=11)
    return moment.astimezone(timezone(offset)).isoformat()


@st.composite
def events(draw: st.DrawFn) -> dict[str, Any]:
    moment = _BASE + timedelta(microseconds=draw(st.integers(-(10**15), 10**15)))
    party = st.fixed_dictionaries({"kind": st.text(max_size=8), "id": st.text(max_size=8), "display": scalars})
    event: dict[str, Any] = {
        "id": draw(st.uuids()).__str__().upper() if draw(st.booleans()) else str(draw(st.uuids())),
        "workspace_id": draw(st.text(max_size=10)),
        "occurred_at": _time_text(moment, draw(st.integers(0, 4))),
        "action": draw(st.sampled_from(["API_TOKEN_CREATED", "MEMBER_ADDED", "é"])),
        "category": draw(st.text(max_size=6)),
        "actor": draw(party),
        "target": draw(party),
        "payload": draw(st.one_of(st.none(), st.fixed_dictionaries(
            {}, optional={"before": st.none() | st.dictionaries(keys, json_values, max_size=5),
                          "after": st.none() | st.dictionaries(keys, json_values, max_size=5),
                          "extra": json_values}))),
        "context": draw(st.fixed_dictionaries({}, optional={k: st.text(max_size=6) | st.none() for k in
                                                          ("ip", "user_agent", "request_id", "service")})),
    }
    if draw(st.booleans()):
        event["log_index"] = draw(st.integers(0, 10**6))  # an export line's extra keys: not covered
    return event


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                   HealthCheck.too_slow])
@given(batch=st.lists(events(), min_size=1, max_size=12), ascii_only=st.booleans())
def test_the_page_canonicalises_every_event_exactly_as_the_python_reference(
    proof_page: Page, batch: list[dict[str, Any]], ascii_only: bool
) -> None:
    """Byte-identical leaf text and leaf hash, or both sides refuse; never a third answer."""
    texts = [json.dumps(e, ensure_ascii=ascii_only) for e in batch]
    # A lone surrogate can only travel to the page escaped (as an API's JSON would carry it).
    texts = [t if t.encode("utf-8", "surrogatepass") == t.encode("utf-8", "replace") else json.dumps(e)
             for t, e in zip(texts, batch, strict=True)]
    assert_same_leaves(proof_page, texts)


def test_big_integers_and_awkward_numbers_give_the_same_leaf_as_python(proof_page: Page) -> None:
    """The API sends integers beyond 2^53 exactly; JSON.parse rounds them to the double JCS compares at."""
    event = {"id": "0190f0a0-0000-7000-8000-00000000000a", "workspace_id": "ws", "occurred_at": "2026-03-01T00:00:00Z",
             "action": "A", "category": "c", "actor": {"kind": "user", "id": "u", "display": "x"},
             "target": {"kind": "user", "id": "u", "display": "x"}, "context": {},
             "payload": {"before": None, "after": {"a": SAFE + 1, "b": 2**64 + 1, "c": -0.0, "d": 1e21, "e": 1e-7}}}
    text = json.dumps(event)
    assert "9007199254740993" in text and "18446744073709551617" in text  # the exact integers go over the wire
    leaf, _ = python_leaf(text)
    assert leaf is not None and '"a":9007199254740992' in leaf and '"b":18446744073709552000' in leaf
    assert '"c":0' in leaf and '"d":1e+21' in leaf and '"e":1e-7' in leaf
    assert_same_leaves(proof_page, [text])


@pytest.mark.parametrize("value", ["\ud800", 10**400, "2026-03-01 00:00:00Z", "2026-03-01T00:00:00",
                                   "2026-03-01T00:00:00.1234567Z", "0999-03-01T00:00:00Z", 7])
def test_what_the_browser_cannot_reproduce_is_reported_as_cannot_check(proof_page: Page, value: object) -> None:
    """Values the page declines: it says "cannot check", even where Python could hash them, never other bytes."""
    event: dict[str, Any] = {"id": "0190f0a0-0000-7000-8000-00000000000a", "workspace_id": "ws",
                             "occurred_at": "2026-03-01T00:00:00Z", "action": "A", "category": "c",
                             "actor": {"kind": "k", "id": "i", "display": "d"},
                             "target": {"kind": "k", "id": "i", "display": "d"}, "context": {}, "payload": None}
    if isinstance(value, str) and value.startswith(("2026", "0999")):
        event["occurred_at"] = value
    elif isinstance(value, int) and value == 7:
        event["id"] = value
    else:
        event["payload"] = {"after": {"v": value}}
    got = proof_page.evaluate(LEAVES_JS, [json.dumps(event)])
    assert got == [[None, None]]


# ---- inclusion proofs and checkpoints ------------------------------------------------------------
ROOT_JS = """async ([leaf, index, size, path]) => {
  const bytes = (h) => Uint8Array.from(h.match(/../g), (b) => parseInt(b, 16));
  try {
    return AuditProof.toHex(await AuditProof.rootFromPath(bytes(leaf), index, size, path.map(bytes)));
  } catch (err) {
    return err instanceof AuditProof.NotVerified ? "not verified: " + err.message : "ERROR " + err;
  }
}"""


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data(), size=st.integers(1, 300))
def test_the_page_folds_every_inclusion_proof_to_the_tree_hash(proof_page: Page, data: st.DataObject,
                                                               size: int) -> None:
    leaves = [leaf_hash(f"leaf {i}".encode()) for i in range(size)]
    hashes = MemoryHashes.from_leaves(leaves)
    root = tree_hash(hashes, size).hex()
    index = data.draw(st.integers(0, size - 1))
    path = [h.hex() for h in inclusion_proof(hashes, index, size)]
    assert proof_page.evaluate(ROOT_JS, [leaves[index].hex(), index, size, path]) == root
    other = (index + 1) % size
    if other != index:  # the same path from another leaf (an edited event) must not reach the root
        assert proof_page.evaluate(ROOT_JS, [leaves[other].hex(), index, size, path]) != root
    if path:
        assert proof_page.evaluate(ROOT_JS, [leaves[index].hex(), index, size, path[:-1]]).startswith(
            "not verified")


CHECKPOINT_JS = """async ([cp, keys, workspace]) => {
  try {
    const ring = await AuditProof.importKeys(keys);
    await AuditProof.verifyCheckpoint(cp, ring, workspace);
    return ["verified", AuditProof.checkpointText(cp)];
  } catch (err) {
    const kind = err instanceof AuditProof.NotVerified ? "not verified" :
                 err instanceof AuditProof.CannotCheck ? "cannot check" : "ERROR";
    return [kind, err.message];
  }
}"""


def test_the_page_checks_a_checkpoint_signature_exactly_as_the_python_signer_signs(proof_page: Page) -> None:
    signer, other = Signer.generate(), Signer.generate()
    keys = [{"key_id": signer.key_id, "public_key_pem": public_pem(signer.public_key)}]
    cp = signer.sign("ws_é", 123_456, hashlib.sha256(b"root").digest(),
                     datetime(2026, 3, 1, 12, 0, 0, 1, tzinfo=UTC))
    good = cp.to_json()
    assert proof_page.evaluate(CHECKPOINT_JS, [good, keys, "ws_é"]) == ["verified", cp.body().decode()]

    def outcome(checkpoint: dict[str, Any], workspace: str = "ws_é") -> list[str]:
        result: list[str] = proof_page.evaluate(CHECKPOINT_JS, [checkpoint, keys, workspace])
        return result

    assert outcome({**good, "tree_size": 123_457})[0] == "not verified"
    assert outcome({**good, "root_hash": hashlib.sha256(b"other").hexdigest()})[0] == "not verified"
    assert outcome(good, "ws_other") == ["not verified", "the checkpoint is of workspace ws_é"]
    foreign = other.sign("ws_é", 123_456, cp.root_hash, cp.timestamp).to_json()
    assert outcome(foreign) == ["not verified",
                                f"it is signed by key {other.key_id}, which the service does not list"]
    # Another key's signature under the service's key id: the signature itself fails.
    forged = {**foreign, "key_id": signer.key_id}
    assert outcome(forged) == ["not verified", f"its Ed25519 signature does not verify with key {signer.key_id}"]
    # The key id is computed from the key, not taken from the list: a mislabelled key trusts nothing new.
    mislabelled = [{"key_id": other.key_id, "public_key_pem": public_pem(signer.public_key)}]
    assert proof_page.evaluate(CHECKPOINT_JS, [foreign, mislabelled, "ws_é"])[0] == "not verified"


CONSISTENCY_JS = """async ([oldSize, newSize, oldRoot, newRoot, proof]) => {
  const bytes = (h) => Uint8Array.from(h.match(/../g), (b) => parseInt(b, 16));
  try {
    await AuditProof.verifyConsistency(oldSize, newSize, bytes(oldRoot), bytes(newRoot), proof.map(bytes));
    return "consistent";
  } catch (err) {
    return err instanceof AuditProof.NotVerified ? "not verified: " + err.message : "ERROR " + err;
  }
}"""


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data(), new_size=st.integers(1, 300))
def test_the_page_accepts_every_consistency_proof_and_refuses_a_rewritten_history(
    proof_page: Page, data: st.DataObject, new_size: int
) -> None:
    old_size = data.draw(st.integers(1, new_size))
    leaves = [leaf_hash(f"leaf {i}".encode()) for i in range(new_size)]
    hashes = MemoryHashes.from_leaves(leaves)
    old_root, new_root = tree_hash(hashes, old_size).hex(), tree_hash(hashes, new_size).hex()
    proof = [h.hex() for h in consistency_proof(hashes, old_size, new_size)]
    assert proof_page.evaluate(CONSISTENCY_JS, [old_size, new_size, old_root, new_root, proof]) == "consistent"

    # One leaf of the old tree rewritten, both trees re-hashed: the same kind of proof no longer joins them.
    edited = data.draw(st.integers(0, old_size - 1))
    rewritten = MemoryHashes.from_leaves([leaf_hash(b"edited") if i == edited else h for i, h in enumerate(leaves)])
    forged = [h.hex() for h in consistency_proof(rewritten, old_size, new_size)]
    new_forged_root = tree_hash(rewritten, new_size).hex()
    assert proof_page.evaluate(CONSISTENCY_JS, [old_size, new_size, old_root, new_forged_root, forged]).startswith(
        "not verified")
    if old_size < new_size:  # a log never shrinks
        assert proof_page.evaluate(CONSISTENCY_JS, [new_size, old_size, new_root, old_root, proof]).startswith(
            "not verified")
