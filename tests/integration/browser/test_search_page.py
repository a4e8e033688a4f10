"""The search box of the Audit page in real headless Chromium: rows, marks, the URL, back and forward."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlparse

import pytest
from playwright.sync_api import Page, expect

from clickhouse.client import get_client
from clickhouse.events import insert_rows, record_to_row
from config.settings import Settings
from tests.integration.browser.conftest import WORKSPACE, Served, screenshot
from tests.integration.browser.test_audit_page import api_page, settled, shown_ids, sign_in_as

pytestmark = [pytest.mark.browser, pytest.mark.clickhouse]

# A target name that would run script if the page ever parsed data as HTML.
HOSTILE = '<img src=x onerror="window.pwned=1">int_evil_target'


@pytest.fixture(scope="module")
def hostile_event(seeded_settings: Settings) -> str:
    """One extra event whose target name is HTML, one hour old (on the first page of a search for it)."""
    event_id = str(uuid.uuid4())
    record = {
        "id": event_id, "workspace_id": WORKSPACE, "occurred_at": datetime.now(UTC) - timedelta(minutes=30),
        "action": "INTEGRATION_CONNECTED", "category": "integrations",
        "actor": {"kind": "user", "id": "usr_mallory", "display": "mallory@example.com"},
        "target": {"kind": "integration", "id": "int_evil", "display": HOSTILE},
        "payload": {"before": None, "after": {"integration_id": "int_evil", "scopes": ["repo:read"]}},
        "context": {"ip": "10.9.8.7", "user_agent": "tests", "request_id": "req_hostile01", "service": "tests"},
    }
    client = get_client(seeded_settings.clickhouse.dsn)
    insert_rows(client, seeded_settings.events_table, [record_to_row(record, 1)], f"hostile-{event_id}")
    return event_id


def marks(page: Page, selector: str) -> list[str]:
    texts: list[str] = page.locator(selector).evaluate_all("ms => ms.map(m => m.textContent)")
    return texts


def test_typing_a_search_shows_the_api_rows_with_matches_marked_and_the_url_carries_q(
    laptop: Page, demo_app: Served
) -> None:
    page = laptop
    sign_in_as(page, demo_app, "owner")
    settled(page)

    with page.expect_response(lambda r: "q=action%3Amember" in r.url):
        page.get_by_label("Search").fill("action:member")
    settled(page)
    expected = api_page(demo_app, q="action:member")["data"]
    assert expected, "the seed should have member actions"
    assert shown_ids(page) == [e["id"] for e in expected]
    assert parse_qs(urlparse(page.url).query)["q"] == ["action:member"]
    # A qualified term is marked in its field only: in every action cell, nowhere else.
    action_marks = marks(page, "#rows .c-action mark")
    assert len(action_marks) >= len(expected) and {m.lower() for m in action_marks} == {"member"}
    assert page.locator("#rows mark").count() == len(action_marks)
    screenshot(page, "laptop-09-search-qualifier")

    page.get_by_label("Search").fill('succeeded "build #"')
    page.get_by_label("Search").press("Enter")
    settled(page)
    free = api_page(demo_app, q='succeeded "build #"')["data"]
    assert free, "the seed should have succeeded builds"
    assert shown_ids(page) == [e["id"] for e in free]
    assert {m.lower() for m in marks(page, "#rows .c-target mark")} == {"build #"}
    first = page.locator("#rows .event").first
    first.locator(".tr").click()
    # In the expanded payload: the value that matched, marked inside the after side.
    expect(first.locator(".side.after mark")).to_have_text(["succeeded"])
    screenshot(page, "laptop-10-search-highlights")

    # Back returns to the previous search (rows and box), Forward to this one.
    page.go_back()
    settled(page)
    expect(page.get_by_label("Search")).to_have_value("action:member")
    assert shown_ids(page) == [e["id"] for e in expected]
    page.go_forward()
    settled(page)
    expect(page.get_by_label("Search")).to_have_value('succeeded "build #"')
    assert shown_ids(page) == [e["id"] for e in free]


def test_a_bookmarked_search_with_filters_reopens_the_same_view(laptop: Page, demo_app: Served) -> None:
    page = laptop
    sign_in_as(page, demo_app, "owner", "&category=pipelines&q=-failed%20run")
    settled(page)
    expect(page.get_by_label("Search")).to_have_value("-failed run")
    expected = api_page(demo_app, category="pipelines", q="-failed run")["data"]
    assert expected and shown_ids(page) == [e["id"] for e in expected]
    assert all("failed" not in t.lower() for t in page.locator("#rows .event").all_inner_texts())


def test_bad_search_syntax_shows_the_apis_message(laptop: Page, demo_app: Served) -> None:
    page = laptop
    sign_in_as(page, demo_app, "owner")
    settled(page)
    page.get_by_label("Search").fill('"role changed')
    page.get_by_label("Search").press("Enter")
    settled(page)
    expect(page.locator("#state-error")).to_be_visible()
    expect(page.locator("#error-message")).to_contain_text("never closed")


def test_marks_split_text_nodes_and_never_parse_data_as_html(
    laptop: Page, demo_app: Served, hostile_event: str
) -> None:
    page = laptop
    sign_in_as(page, demo_app, "owner", "&q=evil")
    settled(page)
    row = page.locator(f'#rows .event[data-id="{hostile_event}"]')
    expect(row.locator(".c-target")).to_contain_text(HOSTILE)
    assert marks(page, f'#rows .event[data-id="{hostile_event}"] mark') == ["evil"]
    assert page.locator("#rows img").count() == 0
    assert page.evaluate("window.pwned === undefined")
