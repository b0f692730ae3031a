"""A real browser (headless Chromium) on a shop page served from another origin uses the snippet
(`/streams.js`): its events reach the worker through `POST /events` and its recommendations come
back over the feed."""

from __future__ import annotations

import functools
import http.server
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

from streams.config import Settings
from streams.live.process import free_port
from streams.web_access import WebAccess
from tests.integration.browser import launch, require_chromium
from tests.integration.harness import start_worker

WRITE_KEY = "wk-shop-page"
SHOPPER = "snippet-shopper"

SHOP_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>a shop</title>
<script src="{worker}/streams.js"></script></head>
<body><h1>A shop on its own origin</h1><ol id="recs"></ol>
<script>
streams.init({{url: "{worker}", key: "{key}", user: "{user}", placement: "home", delay: 50}});
window.recs = [];
streams.follow(function (rec) {{
  window.recs.push(rec);
  document.getElementById("recs").replaceChildren(...rec.items.map(function (i) {{
    var li = document.createElement("li"); li.textContent = i.item_id; return li;
  }}));
}});
</script></body></html>
"""


@contextmanager
def shop_server(folder: Path) -> Iterator[str]:
    """A second local HTTP server: the shop's own origin."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_a_page_on_another_origin_sends_events_and_gets_recommendations(
    settings: Settings, tmp_path: Path
) -> None:
    require_chromium()
    from playwright.sync_api import sync_playwright

    site = tmp_path / "shop"
    site.mkdir()
    with shop_server(site) as shop:
        settings = replace(settings, web_access=WebAccess(collector_keys=(WRITE_KEY,), cors_origins=(shop,)))
        worker_url = f"http://127.0.0.1:{settings.web_port}"
        assert shop != worker_url  # another port: another origin, so every call is cross-origin
        (site / "index.html").write_text(SHOP_PAGE.format(worker=worker_url, key=WRITE_KEY, user=SHOPPER))
        worker = start_worker(settings, tmp_path)
        try:
            worker.wait_ready(180)
            with sync_playwright() as p:
                browser = launch(p)
                page = browser.new_page()
                errors: list[str] = []
                page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
                page.goto(f"{shop}/index.html")
                answer = page.evaluate(
                    "streams.view('sku-1'); streams.addToCart('sku-2', 2); streams.flush()"
                )
                assert answer["accepted"] == 2 and answer["refused"] == 0, answer
                cart_event = answer["clicks"][1]["event_id"]
                page.wait_for_function(
                    f"window.recs.some(r => r.cause_event_id === {cart_event!r})", timeout=120_000
                )
                rec = page.evaluate(f"window.recs.find(r => r.cause_event_id === {cart_event!r})")
                assert rec["user_id"] == SHOPPER and rec["items"], rec
                assert page.locator("#recs li").count() > 0

                # The shopper is shown the list (an impression), then clicks a recommended item: both
                # carry where they came from.
                first = rec["items"][0]["item_id"]
                shown = "streams.impression(rec)"
                clicked = f"streams.click(rec, {first!r}, 1)"
                answer = page.evaluate(f"(rec => ({shown}, {clicked}, streams.flush()))", rec)
                assert answer["accepted"] == 2 and answer["refused"] == 0, answer
                click_event = answer["clicks"][1]["event_id"]
                page.wait_for_function(
                    f"window.recs.some(r => r.cause_event_id === {click_event!r})", timeout=60_000
                )
                page.screenshot(path=str(tmp_path / "shop.png"))
                browser.close()
            assert not [e for e in errors if "CORS" in e or "Access-Control" in e], errors
        finally:
            worker.stop()
