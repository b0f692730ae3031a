"""A real browser (headless Chromium) on the demo page sees a shopper's recommendations update live."""

from __future__ import annotations

import time
from pathlib import Path

from streams.config import Settings
from streams.logs import LogRecord
from tests.integration.browser import launch, require_chromium
from tests.integration.harness import produce, read_topic, start_worker, wait_until


def _view(user: str, n: int, item: str) -> LogRecord:
    ts = int(time.time() * 1000)
    return LogRecord(
        "clicks",
        user,
        ts,
        value={"event_id": f"page-{n}", "user_id": user, "type": "view", "item_id": item, "ts": ts},
    )


def test_demo_page_updates_live(settings: Settings, tmp_path: Path) -> None:
    require_chromium()
    from playwright.sync_api import sync_playwright

    user = "page-shopper"
    produce([_view(user, 0, "sku-1")], settings)
    worker = start_worker(settings, tmp_path)
    try:
        worker.wait_healthy()
        # A worker's first start on a fresh broker can take a while (group coordinator, recovery).
        wait_until(lambda: bool(read_topic(settings, "recommendations")), 180, "the first recommendation")
        with sync_playwright() as p:
            browser = launch(p)
            page = browser.new_page()
            page.goto(f"http://127.0.0.1:{settings.web_port}/demo?user={user}")
            page.wait_for_function(
                "document.getElementById('cause').textContent === 'page-0'", timeout=60_000
            )
            assert page.locator("#recs li").count() > 0
            assert page.locator("#status").text_content() == "live"
            for n, item in enumerate(("sku-2", "sku-3"), start=1):
                produce([_view(user, n, item)], settings)
                page.wait_for_function(
                    f"document.getElementById('cause').textContent === 'page-{n}'", timeout=30_000
                )
            assert "update 3" in (page.locator("#count").text_content() or "")
            page.screenshot(path=str(tmp_path / "demo.png"))
            browser.close()
    finally:
        worker.stop()
