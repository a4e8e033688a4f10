"""What JCS cannot write is refused with InvalidCanonicalForm, on every path, never another exception.

The verifier and the Audit page (query_api/static/proof.js) rely on it: a
value no JSON number or Unicode string can carry exactly makes an event
uncheckable, said plainly, and must not crash ``auditlog verify`` with a
TypeError or OverflowError. tests/integration/browser/test_proof_js.py found
both (a lone surrogate on the payload fast path, an integer beyond a double).
"""

from __future__ import annotations

from typing import Any

import pytest

from transparency.canonical import jcs, leaf_bytes, number_to_string
from transparency.errors import InvalidCanonicalForm


def event(payload: Any) -> dict[str, Any]:
    party = {"kind": "user", "id": "u1", "display": "a@example.com"}
    return {"id": "0190f0a0-0000-7000-8000-00000000000a", "workspace_id": "ws", "occurred_at": "2026-03-01T00:00:00Z",
            "action": "MEMBER_ADDED", "category": "members", "actor": party, "target": party, "context": {},
            "payload": payload}


@pytest.mark.parametrize("payload", [
    {"after": {"name": "\ud800"}},            # the fast path (orjson) for a plain payload
    {"after": {"name": "\udfff", "n": 1.5}},  # the generic path (a float in the payload)
    {"extra": ["\ud83d"]},
])
def test_a_lone_surrogate_in_the_payload_is_refused_as_invalid_canonical_form(payload: dict[str, Any]) -> None:
    with pytest.raises(InvalidCanonicalForm, match="lone surrogate"):
        leaf_bytes(event(payload))


@pytest.mark.parametrize("value", [10**400, -(10**400), 2**1024])
def test_an_integer_beyond_a_double_is_refused_as_invalid_canonical_form(value: int) -> None:
    with pytest.raises(InvalidCanonicalForm, match="beyond the range of a double"):
        number_to_string(value)
    with pytest.raises(InvalidCanonicalForm):
        leaf_bytes(event({"after": {"n": value}}))
    with pytest.raises(InvalidCanonicalForm):
        jcs([value])


def test_the_largest_integer_a_double_holds_is_still_written() -> None:
    assert number_to_string(2**1024 - 2**971) == "1.7976931348623157e+308"
