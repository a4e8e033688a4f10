"""Tamper evidence on the Audit page, in real Chromium against the real app, engine and sequencer.

Each log here is built as production builds it: events stored through the
consumer's row mapping, sequenced by the real sequencer, signed with an
Ed25519 key the app serves. The page must say "verified" only where the
browser checked it, and "not verified" when a stored row or a checkpoint was
tampered with on the engine (``ALTER TABLE … UPDATE``, a checkpoint row signed
by another key), as ``auditlog verify`` does server-side
(tests/integration/test_transparency_tamper.py).
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, expect

from clickhouse.client import get_client
from clickhouse.events import COLUMNS, insert_rows, record_to_row
from clickhouse.migrations import migrate
from config.settings import Settings
from producers.synthetic import EventGenerator
from query_api.app import build_context, create_app
from tests.integration.browser.conftest import WORKSPACE, Served, screenshot
from tests.support.serving import serve
from transparency.checkpoint import Checkpoint, Signer
from transparency.sequencer import Sequencer, tables_for
from transparency.store import LogStore

pytestmark = [pytest.mark.browser, pytest.mark.clickhouse]

SETTLED = re.compile("^(ready|empty|error)$")
# Payload values the page must canonicalise exactly as the sequencer did (the API's value types only:
# scalars and lists of strings). Integers beyond 2^53 travel exactly and are compared as doubles.
AWKWARD_AFTER: dict[str, Any] = {
    "big": 2**53 + 1, "u64": 2**64 - 1, "beyond_u64": 2**70 + 3, "neg": -(2**63), "neg_zero": -0.0,
    "tiny": 5e-324, "small": 1e-7, "max": 1.7976931348623157e308, "third": 1 / 3, "one": 1.0, "e21": 1e21,
    "text": "é ✓ 😀 \u2028\u2029 e\u0301", "escapes": "\"\\\b\f\n\r\t\x01\x1f\x7f </script>",
    "\ue000": "a private-use key (sorts after the astral key in UTF-16 order)", "😀": "an astral key",
    "scopes": ["repo:read", "é"], "flag": True, "none": None,
}


@dataclass
class Log:
    """One workspace's sequenced log behind a running app (demo sign-in on)."""

    served: Served
    signer: Signer
    store: LogStore
    sequencer: Sequencer
    event_ids: list[str]

    def insert(self, rows: list[list[Any]], token: str) -> None:
        insert_rows(get_client(self.served.settings.clickhouse.dsn), self.served.settings.events_table, rows, token)

    def api(self, path: str) -> Any:
        response = httpx.get(f"{self.served.url}/v1/workspaces/{WORKSPACE}/audit{path}",
                             headers={"Authorization": f"Bearer {self.served.token('owner')}"})
        assert response.status_code == 200, response.text
        return response.json()

    def mutate(self, sql: str, **params: object) -> None:
        get_client(self.served.settings.clickhouse.dsn).command(sql, parameters=params,
                                                                settings={"mutations_sync": 2})


def row(event: Any, payload: dict[str, Any] | None = None) -> list[Any]:
    """The stored row of an event (the consumer's mapping), its payload text replaced when given."""
    values = list(record_to_row(event.to_record(), 1))
    if payload is not None:
        values[COLUMNS.index("payload")] = json.dumps(payload, ensure_ascii=False)
    return values


@contextmanager
def sequenced_log(clickhouse_dsn: str, count: int) -> Iterator[Log]:
    """A fresh database: ``count`` events over 30 days, 3 awkward ones newest, all sequenced and signed."""
    tag = uuid.uuid4().hex[:10]
    signer = Signer.generate()
    settings = Settings.model_validate({
        "clickhouse": {"dsn": clickhouse_dsn, "database": f"audit_p{tag}", "table": "events"},
        "api": {"jwt_secret": "test-secret-with-at-least-32-bytes!!", "cursor_secret": "cursor-test-secret",
                "demo_sign_in": True},
        "demo": {"workspace_id": WORKSPACE},
        "transparency": {"signing_key": signer.private_pem().decode(), "settle_seconds": 0,
                         "checkpoint_seconds": 0.001},
    })
    client = get_client(clickhouse_dsn)
    migrate(client, settings.clickhouse.database, settings.clickhouse.table)
    now = datetime.now(UTC)
    gen = EventGenerator(seed=23)
    history = list(gen.history([WORKSPACE], count, now - timedelta(days=30), now - timedelta(hours=1)))
    awkward = [gen.event(WORKSPACE, now - timedelta(minutes=m)) for m in (3, 2, 1)]
    rows = [row(e) for e in history] + [
        row(awkward[0], {"before": None, "after": AWKWARD_AFTER}),
        row(awkward[1], {"before": {"k": 2**53 + 1, "\U0001f600": "x"}, "after": {"k": 2**53 + 3, "\ue000": "y"}}),
        row(awkward[2], {"before": {"v": 9007199254740993.0}, "after": None}),
    ]
    sequencer = Sequencer(client, settings, signer)
    try:
        log = Log(Served("", settings), signer, LogStore(client, tables_for(settings)), sequencer,
                  [str(e.id) for e in history + awkward])
        log.insert(rows, f"proof-seed-{tag}")
        stats = sequencer.round()
        assert stats.leaves == len(rows)
        with serve(create_app(build_context(settings))) as url:
            log.served = Served(url, settings)
            yield log
    finally:
        client.command(f"DROP DATABASE IF EXISTS {settings.clickhouse.database}")


@pytest.fixture(scope="module")
def shared_log(clickhouse_dsn: str) -> Iterator[Log]:
    """One log for the tests that only read it."""
    with sequenced_log(clickhouse_dsn, 300) as log:
        yield log


@pytest.fixture
def own_log(clickhouse_dsn: str) -> Iterator[Log]:
    """A log of its own, for a test that tampers with it."""
    with sequenced_log(clickhouse_dsn, 120) as log:
        yield log


def open_page(page: Page, log: Log) -> None:
    page.goto(f"{log.served.url}/audit?workspace={WORKSPACE}")
    page.locator("#demo-buttons button[data-role=owner]").click()
    expect(page.locator("#audit")).to_have_attribute("data-state", SETTLED)


def expand(page: Page, event_id: str) -> Any:
    """Expand an event's row; returns its proof line once the check finished."""
    row_ = page.locator(f'#rows .event[data-id="{event_id}"]')
    row_.locator(".tr").click()
    proof = row_.locator(".detail .proof")
    expect(proof).not_to_have_attribute("data-proof", "checking")
    return proof


def test_the_banner_says_the_log_is_verified_up_to_the_latest_checkpoint(laptop: Page, shared_log: Log) -> None:
    page = laptop
    open_page(page, shared_log)
    latest = shared_log.api("/checkpoints/latest")
    banner = page.locator("#log-proof")
    expect(banner).to_have_attribute("data-state", "verified")
    expect(banner).to_have_attribute("role", "status")
    expect(banner).to_contain_text("Log verified up to")
    expect(banner).to_contain_text(f"{latest['tree_size']} events")
    expect(banner).to_contain_text(shared_log.signer.key_id)
    assert latest["tree_size"] == len(shared_log.event_ids)
    screenshot(page, "laptop-proof-01-log-verified")


def test_an_expanded_event_shows_its_inclusion_proof_verified(laptop: Page, shared_log: Log) -> None:
    page = laptop
    open_page(page, shared_log)
    event = shared_log.api("/events?limit=50")["data"][5]
    proof = expand(page, event["id"])
    expect(proof).to_have_attribute("data-proof", "verified")
    index = shared_log.api(f"/events/{event['id']}/proof")["leaf_index"]
    expect(proof).to_contain_text(f"Verified: leaf {index} of the log")
    screenshot(page, "laptop-proof-02-event-verified")


def test_events_with_big_integers_floats_and_unicode_verify_in_the_browser(laptop: Page, shared_log: Log) -> None:
    """The three newest events carry awkward payloads; the browser reproduces their leaves exactly."""
    page = laptop
    open_page(page, shared_log)
    newest = shared_log.api("/events?limit=3")["data"]
    assert {e["id"] for e in newest} == set(shared_log.event_ids[-3:])
    assert any(e["payload"]["after"] and e["payload"]["after"].get("big") == 2**53 + 1 for e in newest)
    for event in newest:
        expect(expand(page, event["id"])).to_have_attribute("data-proof", "verified")
    screenshot(page, "laptop-proof-03-awkward-payloads-verified")


def test_a_payload_edited_on_the_engine_shows_not_verified(laptop: Page, own_log: Log) -> None:
    victim = own_log.api("/events?limit=50")["data"][7]["id"]
    edited = json.dumps({"before": None, "after": {"role": "owner"}})
    own_log.mutate(f"ALTER TABLE {own_log.served.settings.events_table} UPDATE payload = {{p:String}}"
                   " WHERE id = {id:UUID}", p=edited, id=victim)
    page = laptop
    open_page(page, own_log)
    expect(page.locator("#log-proof")).to_have_attribute("data-state", "verified")  # the checkpoint is intact
    proof = expand(page, victim)
    expect(proof).to_have_attribute("data-proof", "not-verified")
    expect(proof).to_have_attribute("role", "alert")
    expect(proof).to_contain_text("Not verified: this event differs from what the log signed")
    expect(proof).to_contain_text("changed after it was logged")
    untouched = own_log.api("/events?limit=50")["data"][8]["id"]
    expect(expand(page, untouched)).to_have_attribute("data-proof", "verified")
    screenshot(page, "laptop-proof-04-edited-event-not-verified")


@pytest.mark.parametrize("claimed", ["its own key id", "the service's key id"])
def test_a_checkpoint_signed_by_another_key_shows_the_failure(laptop: Page, own_log: Log, claimed: str) -> None:
    latest = Checkpoint.from_json(own_log.api("/checkpoints/latest"))
    other = Signer.generate()
    forged = other.sign(WORKSPACE, latest.tree_size, latest.root_hash, latest.timestamp + timedelta(seconds=1))
    if claimed == "the service's key id":
        forged = Checkpoint(forged.workspace_id, forged.tree_size, forged.root_hash, forged.timestamp,
                            own_log.signer.key_id, forged.signature)
    own_log.store.insert_checkpoint(forged)
    assert own_log.api("/checkpoints/latest")["signature"] == Checkpoint.to_json(forged)["signature"]
    page = laptop
    open_page(page, own_log)
    banner = page.locator("#log-proof")
    expect(banner).to_have_attribute("data-state", "failed")
    expect(banner).to_have_attribute("role", "alert")
    expect(banner).to_contain_text("Log not verified")
    reason = ("which the service does not list" if claimed == "its own key id"
              else f"signature does not verify with key {own_log.signer.key_id}")
    expect(banner).to_contain_text(reason)
    proof = expand(page, own_log.api("/events?limit=5")["data"][0]["id"])
    expect(proof).to_have_attribute("data-proof", "not-verified")
    expect(proof).to_contain_text("Not verified: the log's latest checkpoint did not verify")
    screenshot(page, f"laptop-proof-05-foreign-key-{'unlisted' if claimed == 'its own key id' else 'forged'}")


def test_an_event_stored_after_the_latest_checkpoint_is_not_yet_sequenced(laptop: Page, own_log: Log) -> None:
    late = EventGenerator(seed=77).event(WORKSPACE, datetime.now(UTC) - timedelta(seconds=10))
    own_log.insert([row(late)], "proof-late")
    page = laptop
    open_page(page, own_log)
    proof = expand(page, str(late.id))
    expect(proof).to_have_attribute("data-proof", "pending")
    expect(proof).to_contain_text("Not in the signed log yet")
    screenshot(page, "laptop-proof-06-not-yet-sequenced")

    own_log.sequencer.round()  # sequenced and signed: the same event now verifies (after a reload)
    page.reload()
    expect(page.locator("#log-proof")).to_have_attribute("data-state", "verified")
    expect(expand(page, str(late.id))).to_have_attribute("data-proof", "verified")


def test_a_browser_without_ed25519_says_it_cannot_check(laptop: Page, shared_log: Log) -> None:
    page = laptop
    page.add_init_script("""(() => {
      const subtle = crypto.subtle, importKey = subtle.importKey.bind(subtle);
      subtle.importKey = (format, data, algorithm, ...rest) =>
        (algorithm && (algorithm.name || algorithm) === "Ed25519")
          ? Promise.reject(new DOMException("Unrecognized algorithm name", "NotSupportedError"))
          : importKey(format, data, algorithm, ...rest);
    })();""")
    open_page(page, shared_log)
    banner = page.locator("#log-proof")
    expect(banner).to_have_attribute("data-state", "unsupported")
    expect(banner).to_contain_text("this browser cannot check Ed25519 signatures")
    proof = expand(page, shared_log.event_ids[-1])
    expect(proof).to_have_attribute("data-proof", "cannot-check")
    screenshot(page, "laptop-proof-07-no-ed25519")


def test_a_history_rewritten_and_re_signed_between_two_visits_shows_on_the_next_visit(
    laptop: Page, own_log: Log
) -> None:
    """The browser keeps the last checkpoint it verified; the next one must extend it (a consistency proof).

    The attacker here holds the signing key: they edit an event, throw the log away and sequence it
    again. Every new checkpoint verifies and the new log is self-consistent (``auditlog verify
    --workspace`` alone would pass), but it does not extend the checkpoint this browser saw.
    """
    page = laptop
    open_page(page, own_log)
    banner = page.locator("#log-proof")
    expect(banner).to_have_attribute("data-state", "verified")
    first = own_log.api("/checkpoints/latest")

    more = EventGenerator(seed=78).event(WORKSPACE, datetime.now(UTC) - timedelta(seconds=5))
    own_log.insert([row(more)], "proof-more")
    own_log.sequencer.round()
    page.reload()
    expect(banner).to_have_attribute("data-state", "verified")
    expect(banner).to_contain_text(f"{first['tree_size'] + 1} events")
    expect(banner).to_contain_text("extends the checkpoint this browser verified")
    expect(banner).to_contain_text(f"({first['tree_size']} events): consistency proof checked")
    screenshot(page, "laptop-proof-08-consistent-with-last-visit")

    victim = own_log.event_ids[10]
    own_log.mutate(f"ALTER TABLE {own_log.served.settings.events_table} UPDATE payload = {{p:String}}"
                   " WHERE id = {id:UUID}", p=json.dumps({"before": None, "after": {"role": "owner"}}), id=victim)
    tables = own_log.store.tables
    for table in (tables.leaves, tables.nodes, tables.checkpoints):
        get_client(own_log.served.settings.clickhouse.dsn).command(f"TRUNCATE TABLE {table}")
    rewriter = Sequencer(get_client(own_log.served.settings.clickhouse.dsn), own_log.served.settings,
                         own_log.signer)
    assert rewriter.round().leaves == first["tree_size"] + 1
    rewritten = own_log.api("/checkpoints/latest")
    assert rewritten["tree_size"] == first["tree_size"] + 1 and rewritten["root_hash"] != first["root_hash"]

    page.reload()
    expect(banner).to_have_attribute("data-state", "failed")
    expect(banner).to_contain_text("History was rewritten")
    expect(banner).to_contain_text(f"two different roots were signed for the same {first['tree_size'] + 1} events")
    screenshot(page, "laptop-proof-09-history-rewritten")
    page.reload()  # the evidence stays: the browser keeps the checkpoint it trusted, not the rewritten one
    expect(banner).to_have_attribute("data-state", "failed")


def test_the_proofs_are_readable_at_phone_width(phone: Page, shared_log: Log) -> None:
    page = phone
    open_page(page, shared_log)
    expect(page.locator("#log-proof")).to_have_attribute("data-state", "verified")
    expect(expand(page, shared_log.event_ids[-2])).to_have_attribute("data-proof", "verified")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390, "the page scrolls sideways"
    screenshot(page, "phone-proof-01-verified")
