"""The assistant context: a compact summary with catalog titles, bounded whatever the input."""

from __future__ import annotations

import json

from streams.core.catalog import CatalogItem
from streams.core.config import RulesConfig
from streams.core.context import MAX_CONTEXT_BYTES, RECENT_VIEWS, assistant_context, context_bytes
from streams.core.processor import Processor
from streams.core.state import StateLimits
from tests.core.fakes import FakeRecommender
from tests.core.test_processor import T0, Driver, click

CATALOG = {
    f"sku-{n}": CatalogItem(f"sku-{n}", T0, price=10.0 + n, category="books", title=f"Novel number {n}")
    for n in range(30)
}


def test_context_summarises_views_cart_intent_recommendations_and_segments() -> None:
    driver = Driver(Processor(FakeRecommender(), catalog=CATALOG))
    driver.run(
        [
            click(1, "u", T0, item="sku-1"),
            click(2, "u", T0 + 1, item="sku-2"),
            click(3, "u", T0 + 2, item="sku-1"),
            click(4, "u", T0 + 3, "add_to_cart", item="sku-2", price=99.0, quantity=2),
        ]
    )
    state = driver.states["u"]
    rec = {"items": [{"item_id": f"sku-{n}", "score": 1.0, "rank": n} for n in range(3, 13)]}
    doc = assistant_context(state, rec, CATALOG, RulesConfig(), T0 + 10)
    # Distinct items, newest first, titles and categories from the catalog.
    assert [(v["item_id"], v["title"], v["category"]) for v in doc["recent_views"]] == [
        ("sku-1", "Novel number 1", "books"),
        ("sku-2", "Novel number 2", "books"),
    ]
    assert doc["cart"] == {
        "items": [
            {"item_id": "sku-2", "title": "Novel number 2", "category": "books", "price": 99.0, "quantity": 2}
        ],
        "lines": 1,
        "value": 198.0,
    }
    assert [r["item_id"] for r in doc["recommendations"]] == ["sku-3", "sku-4", "sku-5", "sku-6", "sku-7"]
    assert doc["recommendations"][0]["title"] == "Novel number 3"
    assert doc["purchase_intent"] == state.intent == 0.2  # the fake model: 0.2 per cart add
    assert "cart_over_100" in doc["segments"] and doc["segments"] == state.segments
    assert doc["interests"] == ["books"] and doc["lifecycle"] == "new" and doc["truncated"] is False
    assert "event_id" not in json.dumps(doc)  # a summary, never the raw events


def test_context_without_a_recommendation_or_catalog_entry() -> None:
    driver = Driver(Processor(FakeRecommender()))
    driver.run([click(1, "u", T0, item="unknown-item")])
    doc = assistant_context(driver.states["u"], None, {}, RulesConfig(), -1)
    assert doc["recent_views"] == [{"item_id": "unknown-item", "ts": T0}]
    assert doc["recommendations"] == [] and doc["as_of"] == T0


def test_context_stays_within_its_size_bound_under_hostile_input() -> None:
    long = "x" * 120
    catalog = {
        f"{long}{n:03d}": CatalogItem(f"{long}{n:03d}", T0, price=1e6, category="c" * 64, title="t" * 5000)
        for n in range(200)
    }
    events = [click(n, "u", T0 + n, item=f"{long}{n:03d}", category="c" * 64) for n in range(100)]
    events += [
        click(1000 + n, "u", T0 + 1000 + n, "add_to_cart", item=f"{long}{n:03d}", price=1e6)
        for n in range(100)
    ]
    driver = Driver(Processor(FakeRecommender(), catalog=catalog), batch_size=64)
    driver.run(events)
    state = driver.states["u"]
    state.segments = [f"segment-{n:02d}-" + "s" * 50 for n in range(32)]
    rec = {"items": [{"item_id": f"{long}{n:03d}", "score": 0.1, "rank": n} for n in range(10)]}
    doc = assistant_context(state, rec, catalog, RulesConfig(), T0 + 5000)
    assert context_bytes(doc) <= MAX_CONTEXT_BYTES
    assert doc["truncated"] is True
    assert len(doc["recent_views"]) <= RECENT_VIEWS
    assert all(len(v["title"]) <= 80 for v in doc["recent_views"])


def test_a_busy_ordinary_shopper_fits_without_truncation() -> None:
    driver = Driver(Processor(FakeRecommender(), catalog=CATALOG, limits=StateLimits()))
    driver.run([click(n, "u", T0 + n, item=f"sku-{n % 30}") for n in range(200)])
    rec = {"items": [{"item_id": f"sku-{n}", "score": 1.0, "rank": n} for n in range(10)]}
    doc = assistant_context(driver.states["u"], rec, CATALOG, RulesConfig(), T0 + 500)
    assert doc["truncated"] is False and len(doc["recent_views"]) == RECENT_VIEWS
    assert context_bytes(doc) < MAX_CONTEXT_BYTES
