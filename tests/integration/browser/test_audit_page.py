"""The Audit page in real headless Chromium against the real app and the real engine.

Every check of what the page shows is made against what the JSON API
answers for the same question, with an owner's bearer token.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx
import pyarrow.parquet as pq
import pytest
from playwright.sync_api import Page, expect

from tests.integration.browser.conftest import WORKSPACE, Served, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.clickhouse]

NO_ACCESS = "only available to its owners and admins"
SETTLED = re.compile("^(ready|empty|error)$")


def api_page(app: Served, **params: str) -> dict[str, Any]:
    response = httpx.get(f"{app.url}/v1/workspaces/{WORKSPACE}/audit/events", params={"limit": "50", **params},
                         headers={"Authorization": f"Bearer {app.token('owner')}"})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def shown_ids(page: Page) -> list[str]:
    ids: list[str] = page.locator("#rows .event").evaluate_all("rows => rows.map(r => r.dataset.id)")
    return ids


def settled(page: Page) -> None:
    """Wait until the page has answered the latest question (rows, empty or error)."""
    expect(page.locator("#audit")).to_have_attribute("data-state", SETTLED)


def sign_in_as(page: Page, app: Served, role: str, query: str = "") -> None:
    page.goto(f"{app.url}/audit?workspace={WORKSPACE}{query}")
    page.locator(f"#demo-buttons button[data-role={role}]").click()


def days_ago(n: int) -> str:
    return (datetime.now(UTC) - timedelta(days=n)).date().isoformat()


def test_chip_actor_target_kind_and_dates_filter_the_rows_the_api_returns(laptop: Page, demo_app: Served) -> None:
    page = laptop
    sign_in_as(page, demo_app, "owner")
    settled(page)
    assert shown_ids(page) == [e["id"] for e in api_page(demo_app)["data"]]
    screenshot(page, "laptop-01-all-events")

    page.get_by_role("button", name="Pipelines", exact=True).click()
    settled(page)
    expect(page.get_by_role("button", name="Pipelines", exact=True)).to_have_attribute("aria-pressed", "true")
    assert shown_ids(page) == [e["id"] for e in api_page(demo_app, category="pipelines")["data"]]

    with page.expect_response(lambda r: "actor=bot" in r.url):
        page.get_by_label("Actor").fill("bot")
    settled(page)
    page.get_by_label("Target kind").select_option("pipeline_run")
    settled(page)
    since, until = days_ago(45), days_ago(5)
    page.get_by_label("Since").fill(since)
    settled(page)
    page.get_by_label("Until").fill(until)
    settled(page)

    question = {"category": "pipelines", "actor": "bot", "target_kind": "pipeline_run", "since": since,
                "until": until}
    expected = api_page(demo_app, **question)["data"]
    assert expected, "the seed should have events for this question"
    assert shown_ids(page) == [e["id"] for e in expected]
    assert all("bot" in t for t in page.locator("#rows .c-actor").all_inner_texts())
    url = parse_qs(urlparse(page.url).query)
    assert {k: v[0] for k, v in url.items()} == {"workspace": WORKSPACE, **question}
    screenshot(page, "laptop-02-filtered")

    # The URL alone reproduces the view: a bookmark or a shared link.
    page.goto(page.url)
    settled(page)
    assert shown_ids(page) == [e["id"] for e in expected]
    expect(page.get_by_label("Actor")).to_have_value("bot")


def test_expanding_a_row_shows_before_and_after_side_by_side_with_changes_marked(
    laptop: Page, demo_app: Served
) -> None:
    page = laptop
    sign_in_as(page, demo_app, "owner", "&category=integrations")
    settled(page)
    event = api_page(demo_app, category="integrations")["data"][0]
    row = page.locator(f'#rows .event[data-id="{event["id"]}"]')
    row.locator(".tr").click()
    expect(row.locator(".tr")).to_have_attribute("aria-expanded", "true")
    before, after = row.locator(".side.before"), row.locator(".side.after")
    expect(before).to_be_visible()
    expect(after).to_be_visible()
    box_b, box_a = before.bounding_box(), after.bounding_box()
    assert box_b and box_a and box_b["x"] < box_a["x"] and abs(box_b["y"] - box_a["y"]) < 2, "not side by side"

    detail = row.locator(".detail")
    for shown in (event["id"], event["target"]["id"], event["actor"]["id"]):
        expect(detail).to_contain_text(shown)
    payload = event["payload"]
    for side, values, other in (("before", payload["before"], payload["after"]),
                                ("after", payload["after"], payload["before"])):
        for key, value in (values or {}).items():
            cell = row.locator(f'.side.{side} dd[data-key="{key}"]')
            for scope in value if isinstance(value, list) else [value]:
                expect(cell).to_contain_text(str(scope) if scope is not None else "null")
            changed = other is None or other.get(key) != value
            assert ("changed" in (cell.get_attribute("class") or "")) == changed, (side, key)
    screenshot(page, "laptop-03-expanded-row")

    row.locator(".tr").press("Enter")
    expect(row.locator(".detail")).to_have_count(0)


def test_chips_and_rows_work_from_the_keyboard(laptop: Page, demo_app: Served) -> None:
    page = laptop
    sign_in_as(page, demo_app, "owner")
    settled(page)
    page.locator("#chips .chip").first.focus()
    for _ in range(2):  # All -> Workspace -> Members
        page.keyboard.press("Tab")
    expect(page.locator(":focus")).to_have_attribute("data-category", "members")
    page.keyboard.press("Enter")
    settled(page)
    expect(page.locator('.chip[data-category="members"]')).to_have_attribute("aria-pressed", "true")
    assert shown_ids(page) == [e["id"] for e in api_page(demo_app, category="members")["data"]]

    page.locator("#rows .event .tr").first.focus()
    page.keyboard.press("ArrowDown")
    page.keyboard.press("Space")
    second = page.locator("#rows .event").nth(1)
    expect(second.locator(".tr")).to_have_attribute("aria-expanded", "true")
    expect(second.locator(".side.after")).to_be_visible()


def test_older_keeps_every_filter_and_continues_where_the_last_page_ended(laptop: Page, demo_app: Served) -> None:
    page = laptop
    question = {"category": "pipelines", "actor": "bot", "target_kind": "pipeline_run", "since": days_ago(55),
                "until": days_ago(1)}
    query = "".join(f"&{k}={v}" for k, v in question.items())
    sign_in_as(page, demo_app, "owner", query)
    settled(page)
    first = api_page(demo_app, **question)
    assert first["next_cursor"], "the seed should give this question more than one page"
    assert shown_ids(page) == [e["id"] for e in first["data"]]

    with page.expect_request(lambda r: "/audit/events?" in r.url) as sent:
        page.get_by_role("button", name="Older →").click()
    settled(page)
    params = {k: v[0] for k, v in parse_qs(urlparse(sent.value.url).query).items()}
    assert {k: params.get(k) for k in question} == question
    assert params["cursor"] == first["next_cursor"]

    second = api_page(demo_app, **question, cursor=first["next_cursor"])
    assert shown_ids(page) == [e["id"] for e in second["data"]]
    last_of_first = (first["data"][-1]["occurred_at"], first["data"][-1]["id"])
    first_of_second = (second["data"][0]["occurred_at"], second["data"][0]["id"])
    assert first_of_second < last_of_first, "page 2 must start right after page 1 ends"
    assert not set(shown_ids(page)) & {e["id"] for e in first["data"]}
    expect(page.locator("#page-label")).to_have_text("Page 2")
    screenshot(page, "laptop-04-older-page")

    page.get_by_role("button", name="← Newest").click()
    settled(page)
    assert shown_ids(page) == [e["id"] for e in first["data"]]
    expect(page.locator("#page-label")).to_have_text("Page 1")
    expect(page.get_by_role("button", name="← Newest")).to_be_hidden()


def test_export_links_carry_the_filters_and_download_the_same_rows(laptop: Page, demo_app: Served) -> None:
    page = laptop
    question = {"category": "members", "since": days_ago(40)}
    sign_in_as(page, demo_app, "owner", "".join(f"&{k}={v}" for k, v in question.items()))
    settled(page)
    for fmt in ("jsonl", "csv", "parquet"):
        href = page.locator(f"#export-{fmt}").get_attribute("href") or ""
        params = {k: v[0] for k, v in parse_qs(urlparse(href).query).items()}
        assert urlparse(href).path == f"/v1/workspaces/{WORKSPACE}/audit/export"
        assert params == {**question, "format": fmt}

    with page.expect_download() as download:
        page.locator("#export-jsonl").click()
    lines = download.value.path().read_text().splitlines()
    exported = [json.loads(line)["id"] for line in lines]
    direct = httpx.get(f"{demo_app.url}/v1/workspaces/{WORKSPACE}/audit/export",
                       params={**question, "format": "jsonl"},
                       headers={"Authorization": f"Bearer {demo_app.token('owner')}"})
    assert exported == [json.loads(line)["id"] for line in direct.text.splitlines()]
    assert exported[:50] == shown_ids(page)
    assert download.value.suggested_filename.endswith(".jsonl")

    with page.expect_download() as csv_download:
        page.locator("#export-csv").click()
    csv_lines = csv_download.value.path().read_text().splitlines()
    assert len(csv_lines) == len(exported) + 1  # a header row

    with page.expect_download() as parquet_download:
        page.locator("#export-parquet").click()
    assert parquet_download.value.suggested_filename.endswith(".parquet")
    assert pq.read_table(parquet_download.value.path()).column("id").to_pylist() == exported


def test_a_member_sees_the_polite_no_access_message_and_no_rows(laptop: Page, demo_app: Served) -> None:
    page = laptop
    sign_in_as(page, demo_app, "member")
    expect(page.locator("#noaccess")).to_be_visible()
    expect(page.locator("#noaccess")).to_contain_text(NO_ACCESS)
    expect(page.locator("#audit")).to_be_hidden()
    expect(page.locator("#rows .event")).to_have_count(0)
    screenshot(page, "laptop-05-member-no-access")


def test_empty_and_error_states_say_what_happened(laptop: Page, demo_app: Served) -> None:
    page = laptop
    sign_in_as(page, demo_app, "admin", "&actor=nobody-matches-this")
    settled(page)
    expect(page.locator("#state-empty")).to_contain_text("No actions match")
    expect(page.locator("#rows .event")).to_have_count(0)
    screenshot(page, "laptop-06-empty")

    page.goto(f"{demo_app.url}/audit?workspace={WORKSPACE}&since={days_ago(1)}&until={days_ago(9)}")
    settled(page)
    expect(page.locator("#state-error")).to_be_visible()
    expect(page.locator("#error-message")).to_contain_text("is after until")
    screenshot(page, "laptop-07-error")


def test_without_the_run_mode_there_is_no_demo_sign_in_and_a_pasted_token_works(
    laptop: Page, plain_app: Served
) -> None:
    page = laptop
    assert httpx.get(f"{plain_app.url}/v1/demo/sign-in").status_code == 404
    assert httpx.post(f"{plain_app.url}/v1/demo/sign-in?role=owner").status_code == 404
    page.goto(f"{plain_app.url}/audit?workspace={WORKSPACE}")
    expect(page.locator("#token-form")).to_be_visible()
    expect(page.locator("#demo-signin")).to_be_hidden()
    screenshot(page, "laptop-08-sign-in")

    token = plain_app.token("owner")
    page.get_by_label("Bearer token").fill(token)
    page.get_by_role("button", name="Sign in").click()
    settled(page)
    assert shown_ids(page) == [e["id"] for e in api_page(plain_app)["data"]]
    assert token not in page.url
    assert page.evaluate("sessionStorage.getItem('auditlog.token')") == token


def test_the_page_is_readable_at_phone_width(phone: Page, demo_app: Served) -> None:
    page = phone
    sign_in_as(page, demo_app, "owner", "&category=auth_tokens")
    settled(page)
    assert shown_ids(page) == [e["id"] for e in api_page(demo_app, category="auth_tokens")["data"]]
    assert page.evaluate("document.documentElement.scrollWidth") <= 390, "the page scrolls sideways"
    screenshot(page, "phone-01-list")
    page.locator("#rows .event .tr").first.click()
    expect(page.locator("#rows .event .side.after").first).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    screenshot(page, "phone-02-expanded")


def test_export_download_links_follow_the_export_access_rules(demo_app: Served) -> None:
    base = f"{demo_app.url}/v1/workspaces/{WORKSPACE}/audit"

    def link(role: str, **params: str) -> httpx.Response:
        return httpx.post(f"{base}/export-links", params={"format": "csv", **params},
                          headers={"Authorization": f"Bearer {demo_app.token(role)}"})

    member = link("member")
    assert member.status_code == 403 and NO_ACCESS in member.json()["message"]
    assert httpx.post(f"{base}/export-links").status_code == 401
    assert link("owner", category="nope").status_code == 400

    url = link("admin", category="members").json()["url"]
    assert httpx.get(demo_app.url + url).status_code == 200
    body, _, sig = parse_qs(urlparse(url).query)["ticket"][0].partition(".")
    forged = f"{base}/export-downloads?ticket={body[:-2]}xx.{sig}"
    assert httpx.get(forged).status_code == 401
    elsewhere = url.replace(f"/workspaces/{WORKSPACE}/", "/workspaces/ws_other/")
    assert httpx.get(demo_app.url + elsewhere).status_code == 401
