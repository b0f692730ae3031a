"""A real browser (headless Chromium) drives the live dashboard (`/demo`) on a real worker with the
shipped model: it views items and fills a cart in the shop simulator, checks out, and sees the
followed shopper's recommendations (with titles) change, the cart, segments entered and exited, and
the system panel's figures."""

from __future__ import annotations

import re
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from streams.config import Settings
from streams.generate import TrafficConfig, generate_traffic
from streams.logs import LogRecord
from streams.web_access import WebAccess
from tests.integration.browser import launch, require_chromium
from tests.integration.harness import get, produce, start_worker, wait_until

SHOPPER = "dashboard-shopper"
ITEMS = 2000  # the shipped model's items: every recommended item has a catalog title
WAIT_MS = 90_000


def _text(page: Any, selector: str) -> str:
    return page.locator(selector).inner_text()


def _wait_text(page: Any, selector: str, pattern: str) -> None:
    """Until the element's text matches the regular expression."""
    page.wait_for_function(
        "([selector, pattern]) => { const e = document.querySelector(selector);"
        " return e !== null && new RegExp(pattern).test(e.textContent); }",
        arg=[selector, pattern],
        timeout=WAIT_MS,
    )


def _updates(page: Any) -> int:
    found = re.search(r"update (\d+)", _text(page, "#count"))
    return int(found.group(1)) if found else 0


def _card_where(page: Any, condition: str, skip: tuple[str, ...] = ()) -> str:
    """The item id of the first in-stock card on the grid's pages that meets `condition` (JS, over
    `price`) and is not in `skip`, paging forward as needed."""
    for _ in range(20):
        item = page.evaluate(
            "([condition, skip]) => { const test = new Function('price', 'return ' + condition);"
            " for (const c of document.querySelectorAll('#grid .card')) {"
            "   if (c.querySelector('.stock') || skip.includes(c.dataset.item)) continue;"
            "   const price = parseFloat(c.querySelector('.price').textContent);"
            "   if (test(price)) return c.dataset.item; }"
            " return null; }",
            [condition, list(skip)],
        )
        if item is not None:
            return str(item)
        first = page.locator("#grid .card").first.get_attribute("data-item")
        page.click("#next")
        page.wait_for_function(
            "(first) => document.querySelector('#grid .card').dataset.item !== first", arg=first
        )
    raise AssertionError(f"no in-stock item with {condition} on the first 20 pages")


def test_dashboard_drives_the_shop_and_shows_the_shopper_and_the_system(
    settings: Settings, tmp_path: Path
) -> None:
    require_chromium()
    from playwright.sync_api import sync_playwright

    settings = replace(
        settings,
        web_access=WebAccess(collector_keys=("demo-key",), shopper_secret="demo-secret", demo=True),
    )
    catalog = generate_traffic(TrafficConfig(users=1, items=ITEMS, events=0, seed=3))
    produce(catalog, settings)
    worker = start_worker(settings, tmp_path)
    base = f"http://127.0.0.1:{settings.web_port}"
    try:
        worker.wait_healthy()
        wait_until(lambda: get(f"{base}/items?limit=1")[1]["total"] == ITEMS, 180, "the catalog loaded")
        with sync_playwright() as p:
            browser = launch(p)
            page = browser.new_page(viewport={"width": 1500, "height": 1100})
            page.goto(f"{base}/demo?user={SHOPPER}")
            _wait_text(page, "#mode", f"Acting as {SHOPPER}")
            _wait_text(page, "#page-info", f"of {ITEMS}")
            # The grid shows catalog titles, categories and prices, not bare ids.
            first = page.locator("#grid .card").first
            assert not re.fullmatch(r"sku-\d+", first.locator(".title").inner_text())
            assert re.search(r"\d+\.\d\d €", first.locator(".price").inner_text())

            # A click on an item sends a view; the shopper's first recommendation arrives with titles,
            # prices and reasons, and the shopper enters the segment of new shoppers.
            viewed = _card_where(page, "price > 0")
            page.click(f"#grid .card[data-item='{viewed}']")
            _wait_text(page, "#sent li", "view .*: accepted")
            _wait_text(page, "#cause", "^demo-")
            page.wait_for_function("document.querySelectorAll('#recs li').length > 0", timeout=WAIT_MS)
            titles = page.locator("#recs li .title").all_inner_texts()
            assert titles and all(not re.fullmatch(r"sku-\d+", t) for t in titles), titles
            assert page.locator("#recs li .reason").count() == len(titles)
            assert _text(page, "#status") == "live"
            _wait_text(page, "#segment-log", "entered new_shopper")
            _wait_text(page, "#activity", "view")

            # Another click: the list updates, and says what changed since the previous one.
            cause, before = _text(page, "#cause"), _updates(page)
            other = _card_where(page, "price > 0", skip=(viewed,))
            page.click(f"#grid .card[data-item='{other}']")
            page.wait_for_function(
                "(cause) => document.getElementById('cause').textContent !== cause",
                arg=cause,
                timeout=WAIT_MS,
            )
            assert _updates(page) > before
            assert page.locator("#recs li .title").count() > 0
            # New, moved and dropped items are marked against the previous list.
            page.wait_for_function(
                "document.querySelectorAll('#recs .change').length > 0"
                " || document.getElementById('dropped').textContent !== ''",
                timeout=WAIT_MS,
            )

            # Into the cart: an item over 100 puts the shopper in cart_over_100.
            dear = _card_where(page, "price > 100")
            page.click(f"#grid .card[data-item='{dear}'] button.add")
            page.wait_for_selector(f"#cart li[data-item='{dear}']", timeout=WAIT_MS)
            _wait_text(page, "#segment-log", "entered cart_over_100")
            _wait_text(page, "#segments-now", "cart_over_100")
            assert re.search(r"\d+\.\d\d €", _text(page, "#cart-total"))

            # Check out: the order empties the cart and the shopper leaves the segments it ended.
            page.wait_for_function("!document.getElementById('checkout').disabled", timeout=WAIT_MS)
            page.click("#checkout")
            _wait_text(page, "#sent li", "placed .*: accepted")
            _wait_text(page, "#segment-log", "exited cart_over_100")
            _wait_text(page, "#cart", "empty")
            _wait_text(page, "#orders", "^1$")

            # A malformed click, straight onto the topic: the worker dead-letters it.
            ts = int(time.time() * 1000)
            bad = {"event_id": "bad-1", "user_id": SHOPPER, "type": "view", "ts": ts}  # no item_id
            produce([LogRecord("clicks", SHOPPER, ts, value=bad)], settings)

            # The system panel: events per second, latency quantiles, lag, dead letters by code.
            _wait_text(page, "#sys-p50", r"^\d+\.\d ms$")
            _wait_text(page, "#sys-p99", r"^\d+\.\d ms$")
            _wait_text(page, "#sys-eps", r"^\d+\.\d$")
            _wait_text(page, "#sys-lag", r"^\d+$")
            _wait_text(page, "#sys-dead", r"\w+: \d+ in the window")
            assert page.locator("#sys-chart polyline").count() == 1
            assert page.locator("#intent-chart polyline").count() == 1

            shot = tmp_path / "dashboard.png"
            page.screenshot(path=str(shot), full_page=True)
            assert shot.stat().st_size > 10_000
            browser.close()
    finally:
        worker.stop()
