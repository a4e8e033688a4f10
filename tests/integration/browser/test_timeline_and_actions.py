"""The timeline, the action type-ahead and the first-look fixes, in real headless Chromium.

What the page shows is checked against what the JSON API answers for the same question.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx
import pytest
from playwright.sync_api import Page, Request, expect

from tests.integration.browser.conftest import WORKSPACE, Served, screenshot
from tests.integration.browser.test_audit_page import api_page, settled, shown_ids, sign_in_as

pytestmark = [pytest.mark.browser, pytest.mark.clickhouse]

TIMELINE_SETTLED = re.compile("^(ready|empty|error)$")


def api_timeline(app: Served, **params: str) -> dict[str, Any]:
    response = httpx.get(f"{app.url}/v1/workspaces/{WORKSPACE}/audit/timeline", params=params,
                         headers={"Authorization": f"Bearer {app.token('owner')}"})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def timeline_settled(page: Page) -> None:
    expect(page.locator("#timeline")).to_have_attribute("data-state", TIMELINE_SETTLED)
    expect(page.locator("#timeline")).to_have_attribute("aria-busy", "false")


def url_filters(page: Page) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlparse(page.url).query).items()}


def bar_counts(page: Page) -> list[int]:
    labels: list[str] = page.locator("#timeline-chart .bar").evaluate_all(
        "bars => bars.map(b => b.getAttribute('aria-label'))")
    return [int(re.search(r": ([\d,]+) events?$", label)[1].replace(",", "")) for label in labels]  # type: ignore[index]


def test_the_timeline_shows_the_apis_buckets_and_a_click_narrows_the_dates(laptop: Page, demo_app: Served) -> None:
    page = laptop
    sign_in_as(page, demo_app, "owner")
    settled(page)
    timeline_settled(page)
    expected = api_timeline(demo_app)
    assert bar_counts(page) == [b["count"] for b in expected["buckets"]]
    expect(page.locator("#timeline-summary")).to_contain_text(f"{expected['total']:,} events")
    screenshot(page, "laptop-10-timeline")

    busiest = max(range(len(expected["buckets"])), key=lambda i: expected["buckets"][i]["count"])
    bucket = expected["buckets"][busiest]
    page.locator(f"#timeline-chart .bar[data-index='{busiest}']").click()
    settled(page)
    timeline_settled(page)
    query = url_filters(page)
    assert datetime.fromisoformat(query["since"]) == max(datetime.fromisoformat(bucket["start"]),
                                                         datetime.fromisoformat(expected["since"]))
    assert datetime.fromisoformat(query["until"]) < datetime.fromisoformat(bucket["end"])
    narrowed = api_page(demo_app, since=query["since"], until=query["until"])["data"]
    assert shown_ids(page) == [e["id"] for e in narrowed]
    assert api_timeline(demo_app, since=query["since"], until=query["until"])["total"] == bucket["count"]
    expect(page.locator("#timeline-reset")).to_be_visible()
    screenshot(page, "laptop-11-timeline-narrowed")


def test_dragging_across_bars_narrows_to_their_whole_span(laptop: Page, demo_app: Served) -> None:
    page = laptop
    sign_in_as(page, demo_app, "owner")
    timeline_settled(page)
    expected = api_timeline(demo_app)["buckets"]
    first, last = page.locator(".bar[data-index='2']"), page.locator(".bar[data-index='5']")
    a, b = first.bounding_box(), last.bounding_box()
    assert a and b
    page.mouse.move(a["x"] + a["width"] / 2, a["y"] + a["height"] - 2)
    page.mouse.down()
    page.mouse.move(b["x"] + b["width"] / 2, b["y"] + b["height"] - 2, steps=6)
    page.mouse.up()
    settled(page)
    query = url_filters(page)
    assert datetime.fromisoformat(query["since"]) == datetime.fromisoformat(expected[2]["start"])
    assert datetime.fromisoformat(query["until"]) < datetime.fromisoformat(expected[5]["end"])
    assert datetime.fromisoformat(query["until"]) >= datetime.fromisoformat(expected[5]["start"])


def test_keyboard_only_arrows_between_bars_and_enter_narrows(laptop: Page, demo_app: Served) -> None:
    page = laptop
    sign_in_as(page, demo_app, "owner")
    settled(page)
    timeline_settled(page)
    expected = api_timeline(demo_app)["buckets"]
    # Tab from the top of the page until a bar has the focus: the chart is one tab stop.
    for _ in range(40):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.classList.contains('bar')"):
            break
    focused = page.evaluate("document.activeElement.dataset.index")
    assert focused == str(len(expected) - 1), "the tab stop is the newest bar"
    page.keyboard.press("Home")
    page.keyboard.press("ArrowRight")
    label = page.evaluate("document.activeElement.getAttribute('aria-label')")
    assert label.endswith(f"{expected[1]['count']:,} event{'s' if expected[1]['count'] != 1 else ''}")
    assert "UTC" in label
    page.keyboard.press("Shift+ArrowRight")
    page.keyboard.press("Shift+ArrowRight")
    expect(page.locator(".bar.selected")).to_have_count(3)
    screenshot(page, "laptop-12-timeline-keyboard-selection")
    page.keyboard.press("Enter")
    settled(page)
    query = url_filters(page)
    assert datetime.fromisoformat(query["since"]) == datetime.fromisoformat(expected[1]["start"])
    assert datetime.fromisoformat(query["until"]) < datetime.fromisoformat(expected[3]["end"])

    # The action type-ahead, keyboard only: type, arrow down, Enter.
    page.get_by_role("combobox", name="Action").focus()
    page.keyboard.type("member ro")
    expect(page.get_by_role("listbox")).to_be_visible()
    page.keyboard.press("ArrowDown")
    page.keyboard.press("Enter")
    settled(page)
    assert url_filters(page)["action"] == "MEMBER_ROLE_CHANGED"
    assert url_filters(page)["since"] == query["since"], "the action composes with the narrowed dates"
    assert shown_ids(page) == [e["id"] for e in api_page(demo_app, action="MEMBER_ROLE_CHANGED",
                                                         since=query["since"], until=query["until"])["data"]]
    # Back to every date from the keyboard.
    page.get_by_role("button", name="Show all dates").focus()
    page.keyboard.press("Enter")
    settled(page)
    assert "since" not in url_filters(page) and url_filters(page)["action"] == "MEMBER_ROLE_CHANGED"


def test_the_action_typeahead_lists_catalog_actions_by_category_and_sets_the_filter(
        laptop: Page, demo_app: Served) -> None:
    page = laptop
    sign_in_as(page, demo_app, "owner")
    settled(page)
    combo = page.get_by_role("combobox", name="Action")
    combo.fill("token")
    listbox = page.get_by_role("listbox")
    expect(listbox).to_be_visible()
    expect(combo).to_have_attribute("aria-expanded", "true")
    names = listbox.get_by_role("option").all_inner_texts()
    assert names and all("TOKEN" in n for n in names)
    groups = listbox.get_by_role("group").evaluate_all(
        "gs => gs.map(g => document.getElementById(g.getAttribute('aria-labelledby')).textContent)")
    assert "Auth & tokens" in groups
    screenshot(page, "laptop-13-action-typeahead")
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowDown")
    active = combo.get_attribute("aria-activedescendant")
    assert active and page.locator(f"#{active}").get_attribute("aria-selected") == "true"
    chosen = page.locator(f"#{active}").inner_text()
    page.keyboard.press("Enter")
    settled(page)
    expect(combo).to_have_value(chosen)
    expect(combo).to_have_attribute("aria-expanded", "false")
    assert url_filters(page)["action"] == chosen
    assert shown_ids(page) == [e["id"] for e in api_page(demo_app, action=chosen)["data"]]
    assert {t for t in page.locator("#rows .c-action").all_inner_texts()} <= {chosen}
    # The URL alone reproduces it, and clearing the field removes the filter.
    page.goto(page.url)
    settled(page)
    expect(page.get_by_role("combobox", name="Action")).to_have_value(chosen)
    page.get_by_role("combobox", name="Action").fill("")
    page.keyboard.press("Enter")
    settled(page)
    assert "action" not in url_filters(page)
    # A whole name typed (in any case) and Apply sets it too; a half-typed one changes nothing.
    page.get_by_role("combobox", name="Action").fill("member_added")
    page.get_by_role("button", name="Apply").click()
    settled(page)
    assert url_filters(page)["action"] == "MEMBER_ADDED"
    page.get_by_role("combobox", name="Action").fill("MEMBER_ADD")
    page.get_by_role("button", name="Apply").click()
    settled(page)
    assert url_filters(page)["action"] == "MEMBER_ADDED"
    expect(page.get_by_role("combobox", name="Action")).to_have_value("MEMBER_ADDED")


def test_one_filter_change_sends_one_list_request_and_one_timeline_request(laptop: Page, demo_app: Served) -> None:
    page = laptop
    sign_in_as(page, demo_app, "owner")
    settled(page)
    timeline_settled(page)
    sent: list[str] = []

    def record(request: Request) -> None:
        path = urlparse(request.url).path
        if path.endswith("/audit/events") or path.endswith("/audit/timeline"):
            sent.append(path.rsplit("/", 1)[1])

    page.on("request", record)
    # A date input's change, then Apply: one question.
    page.get_by_label("Since").fill("2020-01-01")
    page.get_by_role("button", name="Apply").click()
    settled(page)
    timeline_settled(page)
    page.wait_for_timeout(800)  # anything late would show up here
    assert sorted(sent) == ["events", "timeline"], sent
    # A select's change, then Apply again.
    sent.clear()
    page.get_by_label("Target kind").select_option("user")
    page.get_by_role("button", name="Apply").click()
    settled(page)
    timeline_settled(page)
    page.wait_for_timeout(800)
    assert sorted(sent) == ["events", "timeline"], sent
    # Typing in the actor box, then Enter before the pause ends.
    sent.clear()
    page.get_by_label("Actor").fill("a")
    page.keyboard.press("Enter")
    settled(page)
    page.wait_for_timeout(800)
    assert sorted(sent) == ["events", "timeline"], sent
    # Paging is not a filter change: no timeline request.
    sent.clear()
    if page.locator("#older").is_visible():
        page.locator("#older").click()
        settled(page)
        page.wait_for_timeout(500)
        assert sent == ["events"], sent


def test_the_favicon_is_served_and_linked(laptop: Page, demo_app: Served) -> None:
    failed: list[str] = []
    # Nothing sequences this test's workspace, so it has no signed checkpoint: that 404 is an answer the page
    # shows ("No signed checkpoint yet", proof.js), not a missing resource.
    no_checkpoint = "/audit/checkpoints/latest"
    laptop.on("response", lambda r: failed.append(r.url) if r.status >= 400 and no_checkpoint not in r.url else None)
    sign_in_as(laptop, demo_app, "owner")
    settled(laptop)
    response = httpx.get(f"{demo_app.url}/favicon.ico")
    assert response.status_code == 200 and response.headers["content-type"] == "image/x-icon"
    assert response.content[:4] == b"\x00\x00\x01\x00"  # an ICO header
    icon = laptop.evaluate("fetch(document.querySelector('link[rel=icon]').href).then(r => r.status)")
    assert icon == 200
    assert failed == [], failed


def test_at_phone_width_every_chip_and_the_timeline_are_usable(phone: Page, demo_app: Served) -> None:
    page = phone
    sign_in_as(page, demo_app, "owner")
    settled(page)
    timeline_settled(page)
    width = page.viewport_size["width"]  # type: ignore[index]
    boxes = page.locator("#chips .chip").evaluate_all(
        "cs => cs.map(c => { const r = c.getBoundingClientRect(); return [r.left, r.right, r.width]; })")
    assert len(boxes) == 12
    assert all(left >= 0 and right <= width and w > 40 for left, right, w in boxes), boxes
    assert page.evaluate("document.documentElement.scrollWidth") <= width, "the page scrolls sideways"
    screenshot(page, "phone-10-chips-and-timeline")
    page.locator("#chips .chip", has_text="Invites").tap()
    settled(page)
    assert url_filters(page)["category"] == "invites"
    expected = api_timeline(demo_app, category="invites")
    assert bar_counts(page) == [b["count"] for b in expected["buckets"]]
    page.locator(".bar").nth(len(expected["buckets"]) - 2).tap()
    settled(page)
    assert "since" in url_filters(page) and url_filters(page)["category"] == "invites"
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    screenshot(page, "phone-11-timeline-narrowed")


def test_timeline_empty_and_error_states(laptop: Page, demo_app: Served) -> None:
    page = laptop
    sign_in_as(page, demo_app, "owner", "&since=2001-01-01&until=2001-01-02")
    timeline_settled(page)
    expect(page.locator("#timeline-empty")).to_be_visible()
    expect(page.locator("#timeline-chart")).to_be_hidden()
    screenshot(page, "laptop-14-timeline-empty")
    page.route("**/audit/timeline*", lambda route: route.fulfill(
        status=503, content_type="application/json",
        body='{"status":503,"code":"store_unavailable","message":"The audit log store did not answer.","field":null}'))
    page.get_by_label("Until").fill("2001-01-03")
    timeline_settled(page)
    expect(page.locator("#timeline-error")).to_be_visible()
    expect(page.locator("#timeline-error")).to_contain_text("did not answer")
    screenshot(page, "laptop-15-timeline-error")
    page.unroute("**/audit/timeline*")
    page.locator("#timeline-retry").click()
    timeline_settled(page)
    expect(page.locator("#timeline-empty")).to_be_visible()
