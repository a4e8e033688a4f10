"""The real app under uvicorn, a seeded ClickHouse database and headless Chromium for the page tests.

The app runs in a thread of the test process because chDB opens one data
path per process: the server reads the session's ``clickhouse_dsn`` in its own
database. Events go in through the consumer's own row mapping and insert
(clickhouse/events.py), so the page reads exactly what production stores.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from clickhouse.client import get_client
from clickhouse.events import insert_rows, record_to_row
from clickhouse.migrations import migrate
from config.settings import Settings
from producers.synthetic import EventGenerator
from query_api.app import build_context, create_app
from query_api.security import issue_token
from tests.support.serving import serve

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

WORKSPACE = "ws_browser"
SCREENSHOTS = Path(__file__).resolve().parents[3] / "artifacts" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


@dataclass(frozen=True)
class Served:
    """One running app: its base URL and the settings it was built with."""

    url: str
    settings: Settings

    def token(self, role: str, workspace_id: str = WORKSPACE) -> str:
        return issue_token(self.settings.api, user_id=f"usr_{role}", email=f"{role}@example.com",
                           roles={workspace_id: role})


@pytest.fixture(scope="module")
def seeded_settings(clickhouse_dsn: str) -> Iterator[Settings]:
    """A fresh database with 900 realistic events of one workspace over the past 60 days."""
    tag = uuid.uuid4().hex[:10]
    settings = Settings.model_validate(
        {
            "clickhouse": {"dsn": clickhouse_dsn, "database": f"audit_b{tag}", "table": "events"},
            "api": {"jwt_secret": "test-secret-with-at-least-32-bytes!!", "cursor_secret": "cursor-test-secret"},
            "demo": {"workspace_id": WORKSPACE},
        }
    )
    client = get_client(clickhouse_dsn)
    migrate(client, settings.clickhouse.database, settings.clickhouse.table)
    now = datetime.now(UTC)
    events = EventGenerator(seed=11).history([WORKSPACE], 900, now - timedelta(days=60), now - timedelta(hours=1))
    rows = [record_to_row(e.to_record(), 1) for e in events]
    insert_rows(client, settings.events_table, rows, f"browser-seed-{tag}")
    try:
        yield settings
    finally:
        client.command(f"DROP DATABASE IF EXISTS {settings.clickhouse.database}")


def _serve(settings: Settings) -> Iterator[Served]:
    with serve(create_app(build_context(settings))) as url:
        yield Served(url, settings)


@pytest.fixture(scope="module")
def demo_app(seeded_settings: Settings) -> Iterator[Served]:
    """The app as `auditlog up` runs it: demo sign-in on."""
    settings = seeded_settings.model_copy(
        update={"api": seeded_settings.api.model_copy(update={"demo_sign_in": True})}
    )
    yield from _serve(settings)


@pytest.fixture(scope="module")
def plain_app(seeded_settings: Settings) -> Iterator[Served]:
    """The app as any other deployment runs it: no demo sign-in."""
    yield from _serve(seeded_settings)


@pytest.fixture(scope="session")
def chromium() -> Iterator[Browser]:
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium (.ci/run does)")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def _page(browser: Browser, **context_options: Any) -> Iterator[Page]:
    context = browser.new_context(**context_options)
    page = context.new_page()
    page.set_default_timeout(15_000)
    try:
        yield page
    finally:
        context.close()


@pytest.fixture
def laptop(chromium: Browser) -> Iterator[Page]:
    """A 1280-wide desktop tab that accepts downloads."""
    yield from _page(chromium, viewport={"width": 1280, "height": 860}, accept_downloads=True)


@pytest.fixture
def phone(chromium: Browser) -> Iterator[Page]:
    """A 390-wide phone tab."""
    yield from _page(chromium, viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True,
                     has_touch=True)


def screenshot(page: Page, name: str) -> Path:
    """Save a full-page screenshot as a CI artifact."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
