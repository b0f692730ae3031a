"""The dashboard's view of the followed shopper: the profile, the cart and the newest events, each
item with its catalog title and price."""

from __future__ import annotations

from streams.core.catalog import CatalogItem
from streams.core.state import CartLine, RecentEvent, UserState
from streams.live.dashboard import RECENT_ACTIVITY, shopper_panel

CATALOG = {"sku-1": CatalogItem("sku-1", 1, 120.0, True, "electronics", "Phone")}


def test_the_panel_describes_cart_and_activity_with_catalog_facts() -> None:
    state = UserState("u1")
    state.cart = {"sku-1": CartLine([[10, 2]], 110.0), "sku-9": CartLine([[11, 1]])}
    state.recent = [
        RecentEvent(ts, 0, ts, f"e{ts}", "view", "sku-1" if ts % 2 else "sku-9") for ts in range(20)
    ]
    panel = shopper_panel(state, {"user_id": "u1"}, CATALOG)
    assert panel["profile"] == {"user_id": "u1"}
    assert panel["cart"] == [
        {"item_id": "sku-1", "quantity": 2, "title": "Phone", "price": 120.0, "category": "electronics",
         "cart_price": 110.0},
        {"item_id": "sku-9", "quantity": 1, "cart_price": None},
    ]  # fmt: skip
    assert len(panel["recent"]) == RECENT_ACTIVITY
    assert [e["event_id"] for e in panel["recent"][:2]] == ["e19", "e18"]  # newest first
    assert panel["recent"][0]["title"] == "Phone" and "title" not in panel["recent"][1]
