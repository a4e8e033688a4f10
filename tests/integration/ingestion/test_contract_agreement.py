"""The producer's checks (schemas.event.validate_record, Python) and the consumer's (consumer/rules.py,
SQL in the engine) give the same verdict on the same record: one contract, two implementations held
together by a property test on the real engine."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hyp_settings
from hypothesis import strategies as st

from clickhouse.client import get_client
from consumer.rules import REJECTION_REASON, rule_parameters
from consumer.staging import StagingTable
from schemas.catalog import load_catalog
from schemas.errors import SchemaError
from schemas.event import validate_record
from tests.support.messages import CODEC, encode, record

pytestmark = [pytest.mark.clickhouse]

CATALOG = load_catalog()
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

texts = st.one_of(st.text(max_size=12), st.sampled_from(["", " ", "\u3000", "ws_a", "a" * 128, "a" * 129, "ws/a"]))
values = st.one_of(st.none(), st.booleans(), st.integers(-(2**63), 2**63 - 1), st.text(max_size=5),
                   st.floats(allow_nan=True, allow_infinity=True), st.lists(st.text(max_size=3), max_size=2))
payload_maps = st.one_of(st.none(), st.dictionaries(st.text(max_size=4), values, max_size=3))


@st.composite
def records(draw: Any) -> dict[str, Any]:
    rec = record("ws_ok")
    mutation = draw(st.sampled_from(["none", "workspace", "time", "action", "category", "actor", "target", "payload",
                                     "actor_kind"]))
    if mutation == "workspace":
        rec["workspace_id"] = draw(texts)
    elif mutation == "time":
        seconds = draw(st.integers(-(2**37), 2**37))  # years ~ -2400 .. 6300, around both edges
        rec["occurred_at"] = EPOCH + timedelta(seconds=seconds) if -62135596800 < seconds < 253402300799 else \
            datetime(1, 1, 1, tzinfo=UTC)
    elif mutation == "action":
        rec["action"] = draw(st.sampled_from([*list(CATALOG.actions)[:5], "NOT_AN_ACTION", ""]))
    elif mutation == "category":
        rec["category"] = draw(st.sampled_from(["members", "agent", "", "nope"]))
    elif mutation == "actor":
        rec["actor"] = {"kind": "user", "id": draw(texts), "display": draw(texts)}
    elif mutation == "actor_kind":
        rec["actor"] = {**rec["actor"], "kind": draw(st.sampled_from(["user", "robot", "agent", "api_token", ""]))}
    elif mutation == "target":
        rec["target"] = {**rec["target"], "id": draw(texts)}
    elif mutation == "payload":
        rec["payload"] = {"before": draw(payload_maps), "after": draw(payload_maps)}
    return rec


def _python_verdict(rec: dict[str, Any]) -> bool:
    try:
        validate_record(rec, CATALOG)
    except SchemaError:
        return False
    return True


def _encodable(rec: dict[str, Any]) -> bool:
    try:
        encode(rec)
    except (ValueError, TypeError, OverflowError):
        return False
    return True


@hyp_settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(batch=st.lists(records(), min_size=1, max_size=25))
def test_the_producer_and_the_consumer_refuse_the_same_records(clickhouse_settings, batch):
    batch = [r for r in batch if _encodable(r)]
    if not batch:
        return
    staging = StagingTable(get_client(clickhouse_settings.clickhouse.dsn), clickhouse_settings.clickhouse.database)
    staging.stage(CODEC.writer, [encode(r) for r in batch])
    rows = get_client(clickhouse_settings.clickhouse.dsn).query(
        f"SELECT _seq, {REJECTION_REASON} FROM {staging.name} ORDER BY _seq", parameters=rule_parameters(CATALOG),
    ).result_rows
    staging.drop()
    assert [r[0] for r in rows] == list(range(len(batch)))
    for rec, (_seq, reason) in zip(batch, rows, strict=True):
        python_ok = _python_verdict(rec)
        floats = [v for side in ("before", "after") for v in ((rec["payload"] or {}).get(side) or {}).values()
                  if isinstance(v, float)]
        assert (reason == "") == python_ok, (
            f"the producer says {'valid' if python_ok else 'invalid'}, the consumer says {reason or 'valid'!r} "
            f"for {rec!r} (floats {[f for f in floats if not math.isfinite(f)]})")
