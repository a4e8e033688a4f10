"""The consumer's fast decoder agrees with the reference path (codec.decode + validate_record) on every input."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime

import pytest

from consumer.decode import MessageDecoder
from consumer.errors import InvalidMessage
from producers.synthetic import EventGenerator
from schemas.catalog import load_catalog
from schemas.codec import default_codec

CODEC = default_codec()
DECODER = MessageDecoder(CODEC, load_catalog())


def _records(n: int, seed: int = 5) -> list[dict]:
    gen = EventGenerator(seed=seed)
    events = gen.history(["ws_a", "ws_b"], n, datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 2, 1, tzinfo=UTC))
    return [e.to_record() for e in events]


def _outcome(fn, value: bytes):
    try:
        return ("row", fn(value, 3, 42))
    except InvalidMessage as err:
        return ("invalid", err.reason)


def _agree(value: bytes) -> tuple[str, object]:
    fast = _outcome(DECODER.to_row, value)
    ref = _outcome(DECODER.reference_row, value)
    assert fast[0] == ref[0], f"fast path said {fast}, reference said {ref}"
    if fast[0] == "row":
        assert fast[1] == ref[1]
    return fast


def test_valid_events_decode_to_the_same_rows_on_both_paths():
    for record in _records(300):
        kind, row = _agree(CODEC.encode(record))
        assert kind == "row"
        assert row[0] == record["id"]


MUTATIONS = [
    ("workspace_id", "   "),
    ("action", "NOT_IN_CATALOG"),
    ("category", "members"),
    ("actor", {"kind": "robot", "id": "r1", "display": "r"}),
    ("actor", {"kind": "user", "id": " ", "display": "x@example.com"}),
    ("actor", {"kind": "user", "id": "u1", "display": ""}),
    ("target", {"kind": "not_a_kind", "id": "t", "display": "t"}),
    ("id", "not-a-uuid"),
    ("id", "{12345678-1234-5678-1234-567812345678}"),
    ("id", "12345678-1234-5678-1234-56781234567A"),
    ("payload", {"before": {"": 1}, "after": None}),
    ("payload", {"before": None, "after": {"role": "admin", "": "x"}}),
    ("occurred_at", datetime(1850, 1, 1, tzinfo=UTC)),
    ("occurred_at", datetime(2400, 1, 1, tzinfo=UTC)),
]


@pytest.mark.parametrize(("field", "value"), MUTATIONS, ids=lambda v: str(v)[:30])
def test_mutated_events_get_the_same_verdict_on_both_paths(field, value):
    record = dict(_records(1, seed=9)[0])
    record[field] = value
    _agree(CODEC.encode(record))


def test_target_id_must_be_present_on_both_paths():
    record = _records(1)[0]
    record["target"] = {**record["target"], "id": "  "}
    kind, reason = _agree(CODEC.encode(record))
    assert kind == "invalid" and "target.id" in str(reason)


def test_corrupt_truncated_and_padded_bytes_get_the_same_verdict():
    rng = random.Random(1)
    good = [CODEC.encode(r) for r in _records(40, seed=3)]
    for value in good:
        _agree(value[: rng.randrange(1, len(value))])
        _agree(value + b"\x00")
        flipped = bytearray(value)
        flipped[rng.randrange(10, len(value))] ^= 0xFF
        _agree(bytes(flipped))
        assert _agree(b"\xc3\x01" + uuid.uuid4().bytes[:8] + value[10:])[0] == "invalid"
    assert _agree(b"garbage, not avro")[0] == "invalid"
    assert _agree(b"")[0] == "invalid"
