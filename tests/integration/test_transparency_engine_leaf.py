"""The engine's leaf hash (``canonical.engine_leaf_sql``) against Python's ``row_leaf_bytes``, on the real engine.

The sequencer lets the engine hash every row it calls ``plain`` and hashes the
rest in Python; ``verify`` always recomputes in Python. So the guarantee under
attack: whenever the engine says ``plain``, its SHA-256 is byte for byte the
one Python computes — for random strings (quotes, backslashes, controls,
non-ASCII, U+2028, astral characters) and random payload texts (compact or
spaced, escaped, floats, huge integers, repeated or extra keys, reordered).
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from clickhouse.client import get_client
from clickhouse.events import COLUMNS, SELECT_COLUMNS
from config.settings import Settings
from producers.synthetic import EventGenerator
from tests.support.pipeline import store_directly
from transparency.audit import verify_workspace
from transparency.canonical import engine_leaf_sql, row_leaf_bytes
from transparency.checkpoint import Keyring, Signer
from transparency.errors import InvalidCanonicalForm
from transparency.merkle import leaf_hash
from transparency.sequencer import Sequencer

pytestmark = pytest.mark.clickhouse

T0 = datetime(2026, 3, 1, tzinfo=UTC)
TRICKY = ["", "plain", 'a"b', "a\\b", "tab\there", "nl\n", "\x00", "\x7f", "é", "\u2028", "😀", "a/b", " sp ", "\ud7ff",
          "\ue000", "{}", "[]", ",\"after\":"]
texts = st.one_of(st.sampled_from(TRICKY), st.text(max_size=8),
                  st.text(alphabet=st.characters(codec="utf-8"), max_size=8))
scalars = st.one_of(st.none(), st.booleans(), st.integers(-(2**63), 2**63 - 1),
                    st.floats(allow_nan=False, allow_infinity=False), texts, st.lists(texts, max_size=3))
maps = st.one_of(st.none(), st.dictionaries(texts, scalars, max_size=4))


@st.composite
def payload_texts(draw: st.DrawFn) -> str:
    before, after = draw(maps), draw(maps)
    how = draw(st.sampled_from(["compact", "spaced", "ascii", "reordered", "extra", "repeated", "empty"]))
    if how == "compact":  # what record_to_row and the consumer's mapping write
        return orjson.dumps({"before": before, "after": after}).decode()
    if how == "spaced":
        return json.dumps({"before": before, "after": after}, ensure_ascii=False)
    if how == "ascii":
        return json.dumps({"before": before, "after": after}, separators=(",", ":"))
    if how == "reordered":
        return orjson.dumps({"after": after, "before": before}).decode()
    if how == "extra":
        return orjson.dumps({"before": before, "after": after, "note": draw(scalars)}).decode()
    if how == "repeated":
        return '{"before":{"k":1,"k":2},"after":null}'
    return ""


@st.composite
def rows(draw: st.DrawFn, workspace_id: str) -> tuple[Any, ...]:
    s = [draw(texts) for _ in range(12)]
    occurred = T0 + timedelta(microseconds=draw(st.integers(0, 10**12)))
    return (str(uuid.uuid4()), workspace_id, occurred, s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7],
            draw(payload_texts()), s[8], s[9], s[10], s[11], 1)


def _insert(client: Any, table: str, batch: list[tuple[Any, ...]]) -> None:
    client.insert(table, list(zip(*batch, strict=True)), column_names=COLUMNS, column_oriented=True)


def _engine_and_python(client: Any, table: str, workspace_id: str) -> list[tuple[int, bytes, bytes | None]]:
    plain, hashed = engine_leaf_sql()
    got = client.query(f"SELECT {SELECT_COLUMNS}, workspace_id, {plain}, {hashed} FROM {table}"
                       " WHERE workspace_id = {ws:String}", parameters={"ws": workspace_id}).result_rows
    out = []
    for row in got:
        try:
            python: bytes | None = leaf_hash(row_leaf_bytes(row, workspace_id))
        except InvalidCanonicalForm:
            python = None
        out.append((int(row[16]), bytes(row[17]), python))
    return out


@hsettings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(data=st.data())
def test_whenever_the_engine_calls_a_row_plain_its_leaf_hash_is_pythons(clickhouse_settings: Settings,
                                                                       data: st.DataObject) -> None:
    client = get_client(clickhouse_settings.clickhouse.dsn)
    ws = f"ws_{uuid.uuid4().hex[:10]}"
    batch = data.draw(st.lists(rows(ws), min_size=1, max_size=12))
    _insert(client, clickhouse_settings.events_table, batch)
    for plain, engine, python in _engine_and_python(client, clickhouse_settings.events_table, ws):
        if plain:
            assert python is not None and engine == python


def test_the_generators_events_are_all_hashed_by_the_engine(clickhouse_settings: Settings) -> None:
    """The fast path must be the common path: every event the synthetic producers send is plain."""
    client = get_client(clickhouse_settings.clickhouse.dsn)
    events = list(EventGenerator(seed=11).history(["ws_gen"], 2000, T0, T0 + timedelta(days=2)))
    store_directly(clickhouse_settings, events, token="gen")
    got = _engine_and_python(client, clickhouse_settings.events_table, "ws_gen")
    assert len(got) == 2000
    assert all(plain and engine == python for plain, engine, python in got)


@pytest.mark.parametrize("payload", [
    '{"before": null, "after": null}',                 # whitespace
    '{"before":null,"after":{"n":1.0}}',               # a float (JCS writes 1)
    '{"before":null,"after":{"n":12345678901234567}}',  # beyond 15 digits
    '{"before":null,"after":{"s":"\\u00e9"}}',         # an escape (JCS writes é)
    '{"before":{"k":1,"k":2},"after":null}',           # a repeated name
    '{"after":null,"before":null}',                    # another member order
    '{"before":null,"after":null,"x":1}',              # a member beyond before/after
    '{"before":null,"after":{"b":{"c":1}}}',           # a nested object
])
def test_payloads_the_engine_cannot_spell_are_left_to_python(clickhouse_settings: Settings, payload: str) -> None:
    client = get_client(clickhouse_settings.clickhouse.dsn)
    ws = f"ws_{uuid.uuid4().hex[:10]}"
    row = (str(uuid.uuid4()), ws, T0, "member.added", "members", "user", "u1", "Ann", "user", "u2", "Bob", payload,
           "", "", "", "", 1)
    _insert(client, clickhouse_settings.events_table, [row])
    [(plain, _engine, python)] = _engine_and_python(client, clickhouse_settings.events_table, ws)
    assert not plain and python is not None


def test_a_round_mixing_engine_and_python_hashes_verifies(clickhouse_settings: Settings) -> None:
    """Rows the engine leaves to Python get their leaves in the same order, and verify passes."""
    settings = clickhouse_settings.model_copy(update={"transparency": clickhouse_settings.transparency.model_copy(
        update={"settle_seconds": 0.0, "checkpoint_seconds": 0.001})})
    client = get_client(settings.clickhouse.dsn)
    ws = "ws_mixed"
    batch = []
    for i in range(60):
        display = f'Ann "{i}"' if i % 3 == 0 else f"Ann {i}"  # every third needs an escape
        payload = '{"before":null,"after":{"ratio":0.5}}' if i % 5 == 0 else '{"before":null,"after":{"n":1}}'
        batch.append((str(uuid.uuid4()), ws, T0 + timedelta(seconds=i), "member.added", "members", "user", "u1",
                      display, "user", "u2", "Bob", payload, "", "", "", "", 1))
    _insert(client, settings.events_table, batch)
    signer = Signer.generate()
    seq = Sequencer(client, settings, signer)
    assert seq.round().leaves == 60
    assert seq.store.tree_size(ws) == 60
    stored = {e: h for _i, e, h in seq.store.leaf_rows(ws)}
    for _plain, _engine, python in _engine_and_python(client, settings.events_table, ws):
        assert python in stored.values()
    report = verify_workspace(settings, ws, Keyring([signer.public_key]))
    assert report.ok, report.divergences
