"""Profiles, audience segments and the assistant context through a real worker and broker."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

from streams.codec import decode_value
from streams.config import Settings
from streams.core.context import MAX_CONTEXT_BYTES
from streams.logs import LogRecord
from streams.schemas import validate
from tests.integration.harness import offline, produce, read_topic, start_worker, wait_until
from tests.integration.test_http_api import get

T0 = 1_700_000_000_000
SHOPPER = "shopper-1"
TOKEN = "pr0file-token"


def catalog_item(n: int, price: float, category: str) -> LogRecord:
    value = {"item_id": f"sku-{n}", "ts": T0, "price": price, "in_stock": True, "category": category}
    return LogRecord("catalog", f"sku-{n}", T0, value={**value, "title": f"Acme {category} {n}"})


def shopper_clicks() -> list[LogRecord]:
    steps = [
        ("view", 11, None),
        ("view", 12, None),
        ("add_to_cart", 11, 1),  # 80: not yet
        ("add_to_cart", 12, 1),  # 120: enters cart_over_100
        ("view", 13, None),
        ("remove_from_cart", 11, 1),  # 40: exits
        ("view", 14, None),
    ]
    records = []
    for n, (kind, item, quantity) in enumerate(steps):
        value: dict[str, Any] = {
            "event_id": f"p-{n}",
            "user_id": SHOPPER,
            "type": kind,
            "item_id": f"sku-{item}",
            "ts": T0 + 60_000 * (n + 1),
            "session_id": "s-1",
            **({"quantity": quantity} if quantity else {}),
        }
        records.append(LogRecord("clicks", SHOPPER, value["ts"], value=value))
    return records


def test_a_replayed_shopper_gets_segments_a_profile_and_a_context(settings: Settings, tmp_path: Path) -> None:
    settings = replace(settings, api_token=TOKEN)
    catalog = [catalog_item(11, 80.0, "electronics"), catalog_item(12, 40.0, "electronics")]
    catalog += [catalog_item(13, 25.0, "books"), catalog_item(14, 15.0, "books")]
    records = [*catalog, *shopper_clicks()]
    expected = offline(records, settings)
    want_segments = [o.value for o in expected.outputs if o.topic == "audience-segments"]
    worker = start_worker(settings, tmp_path)
    try:
        worker.wait_ready()
        produce(records, settings)
        wait_until(lambda: len(read_topic(settings, "recommendations")) >= 7, 180, "7 recommendations")
        wait_until(
            lambda: len(read_topic(settings, "audience-segments")) >= len(want_segments), 60, "segment events"
        )
        got = [decode_value(m.value) for m in read_topic(settings, "audience-segments")]
        for value in got:
            validate("audience_segment", value)
        cart = [(e["action"], e["cause_event_id"]) for e in got if e["segment"] == "cart_over_100"]
        assert cart == [("enter", "p-3"), ("exit", "p-5")]  # exactly one enter and one exit
        assert got == want_segments  # what `streams replay --offline` writes

        base = f"http://127.0.0.1:{settings.web_port}/users/{SHOPPER}"
        for path in ("profile", "context"):
            assert get(f"{base}/{path}")[0] == 401
            assert get(f"{base}/{path}", token="wrong")[0] == 401
        assert get(f"http://127.0.0.1:{settings.web_port}/users/nobody/profile", token=TOKEN)[0] == 404

        status, profile = get(f"{base}/profile", token=TOKEN)
        assert status == 200, profile
        assert [i["category"] for i in profile["interests"]] == ["electronics", "books"]
        assert profile["lifecycle"] == "new" and profile["rfm"]["frequency"] == 0
        assert profile["price"]["band"] in ("mid", "budget") and profile["events"] == 7
        assert profile["segments"] == sorted(expected.states[SHOPPER].segments)

        status, context = get(f"{base}/context", token=TOKEN)
        assert status == 200, context
        assert len(json.dumps(context, separators=(",", ":")).encode()) <= MAX_CONTEXT_BYTES
        assert [(v["item_id"], v["title"]) for v in context["recent_views"]] == [
            ("sku-14", "Acme books 14"),
            ("sku-13", "Acme books 13"),
            ("sku-12", "Acme electronics 12"),
            ("sku-11", "Acme electronics 11"),
        ]
        assert [(i["item_id"], i["quantity"]) for i in context["cart"]["items"]] == [("sku-12", 1)]
        assert context["cart"]["value"] == 40.0
        latest = get(f"http://127.0.0.1:{settings.web_port}/users/{SHOPPER}/recommendations")[1]
        assert [r["item_id"] for r in context["recommendations"]] == [
            i["item_id"] for i in latest["items"][:5]
        ]
        assert context["purchase_intent"] == latest["purchase_intent"]
        assert context["segments"] == profile["segments"]

        status, spec = get(f"http://127.0.0.1:{settings.web_port}/openapi.json")
        assert {"/users/{user_id}/profile", "/users/{user_id}/context"} <= set(spec["paths"])
    finally:
        worker.stop()
