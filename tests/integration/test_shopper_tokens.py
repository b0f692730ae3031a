"""Shopper tokens on a real worker: with the shopper's own token the feed carries everything for the
shopper; without one only recommendations (nothing that tells the cart); another shopper's, an
expired or a forged token is refused; with tokens required, no token is refused too."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

from streams.config import Settings
from streams.live.shopper_tokens import mint
from streams.logs import LogRecord
from streams.web_access import WebAccess
from tests.integration.harness import get, produce, start_worker, wait_until
from tests.integration.test_http_api import SseReader, get_status

SECRET = "shop-secret"
SHOPPER = "token-shopper"


def click(n: int, kind: str, item: str, ts: int, **fields: object) -> LogRecord:
    value = {"event_id": f"tok-{n}", "user_id": SHOPPER, "type": kind, "item_id": item, "ts": ts, **fields}
    return LogRecord("clicks", SHOPPER, ts, value=value)


def test_the_feed_shows_a_shopper_everything_only_with_their_token(
    settings: Settings, tmp_path: Path
) -> None:
    settings = replace(settings, web_access=WebAccess(shopper_secret=SECRET))
    now = time.time()
    token = mint(SECRET, SHOPPER, int(now) + 600)
    base = f"http://127.0.0.1:{settings.web_port}/users/{SHOPPER}/recommendations"
    worker = start_worker(settings, tmp_path)
    try:
        worker.wait_ready(180)
        refused = {
            "another shopper's": mint(SECRET, "someone-else", int(now) + 600),
            "an expired": mint(SECRET, SHOPPER, int(now) - 1),
            "a forged": mint("not-the-secret", SHOPPER, int(now) + 600),
        }
        for what, bad in refused.items():
            assert get_status(f"{base}/stream?shopper_token={bad}") == 401, what
            status, body = get(base, token=bad)
            assert status == 401 and "shopper token" in body["error"], (what, body)

        with_token = SseReader(f"{base}/stream?shopper_token={token}")
        without = SseReader(f"{base}/stream")
        with_token.start()
        without.start()
        time.sleep(2)  # both connected before the events happen (the feed is live, not a log)
        ts = int(now * 1000)
        # A new shopper (segment new_shopper) puts 150 worth in the cart (segment cart_over_100).
        produce(
            [
                click(1, "view", "sku-7", ts),
                click(2, "add_to_cart", "sku-7", ts + 1000, price=150.0, quantity=1),
                click(3, "view", "sku-8", ts + 2000),
            ],
            settings,
        )

        def caused_by_last(events: list[tuple[str, dict]]) -> bool:
            return any(kind == "recommendation" and e["cause_event_id"] == "tok-3" for kind, e in events)

        wait_until(lambda: caused_by_last(with_token.events), 120, "the token holder's recommendations")
        wait_until(lambda: caused_by_last(without.events), 60, "the public feed's recommendations")
        wait_until(
            lambda: any(k == "segment" for k, _ in with_token.events), 30, "a segment on the token feed"
        )
        kinds = {kind for kind, _ in with_token.events}
        assert {"recommendation", "segment"} <= kinds, kinds
        assert {kind for kind, _ in without.events} == {"recommendation"}
        assert all("removed" not in e.get("provenance", {}) for _, e in without.events)
        assert any("removed" in e.get("provenance", {}) for _, e in with_token.events)

        status, public = get(base)
        assert status == 200 and "removed" not in public.get("provenance", {})
        status, full = get(base, token=token)
        assert status == 200 and full["rec_id"] == public["rec_id"] and "removed" in full["provenance"]
    finally:
        worker.stop()


def test_required_tokens_refuse_a_request_without_one(settings: Settings, tmp_path: Path) -> None:
    settings = replace(settings, web_access=WebAccess(shopper_secret=SECRET, shopper_tokens="required"))
    base = f"http://127.0.0.1:{settings.web_port}/users/{SHOPPER}/recommendations"
    worker = start_worker(settings, tmp_path)
    try:
        worker.wait_healthy()
        assert get_status(base) == 401
        assert get_status(f"{base}/stream") == 401
        token = mint(SECRET, SHOPPER, int(time.time()) + 600)
        # Allowed in: this shopper has no recommendation yet.
        assert get(base, token=token)[0] == 404
        assert get_status(f"{base}?shopper_token={token}") == 404
    finally:
        worker.stop()
