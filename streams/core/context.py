"""`GET /users/{id}/context`: what a shopping assistant or a support chatbot should know about the
shopper it talks to, small enough to put into a prompt.

A summary, never a raw event dump: the latest distinct items viewed (with titles and categories
from the catalog), the cart, the purchase intent, the current recommendations, the active segments,
the strongest interests and the lifecycle stage. Every list has a cap, every string a length limit,
and the whole document, as compact JSON, stays within `MAX_CONTEXT_BYTES` (lists are shortened
from their tail if hostile input would push it over).
"""

from __future__ import annotations

import json
from typing import Any

from streams.core import profile as profiles
from streams.core.catalog import Catalog
from streams.core.config import RulesConfig
from streams.core.state import UserState

MAX_CONTEXT_BYTES = 4096
RECENT_VIEWS = 8
CART_LINES = 10
RECOMMENDATIONS = 5
INTERESTS = 3
TEXT_CHARS = 80  # titles, categories, ids


def _text(value: str | None) -> str | None:
    if value is None or len(value) <= TEXT_CHARS:
        return value
    return value[: TEXT_CHARS - 1] + "…"


def _item(item_id: str, catalog: Catalog, category: str | None = None) -> dict[str, Any]:
    known = catalog.get(item_id)
    out: dict[str, Any] = {"item_id": _text(item_id)}
    title = known.title if known is not None else None
    category = category or (known.category if known is not None else None)
    if title:
        out["title"] = _text(title)
    if category:
        out["category"] = _text(category)
    if known is not None and known.price is not None:
        out["price"] = known.price
    return out


def _recent_views(state: UserState, catalog: Catalog) -> list[dict[str, Any]]:
    seen: set[str] = set()
    out = []
    for event in reversed(state.recent):  # newest first
        if event.kind != "view" or event.item_id is None or event.item_id in seen:
            continue
        seen.add(event.item_id)
        out.append({**_item(event.item_id, catalog, event.category), "ts": event.ts})
        if len(out) == RECENT_VIEWS:
            break
    return out


def _cart(state: UserState, catalog: Catalog) -> dict[str, Any]:
    lines = sorted(state.cart.items(), key=lambda kv: (-kv[1].updated_ts, kv[0]))
    items = []
    for item_id, line in lines[:CART_LINES]:
        entry = {**_item(item_id, catalog), "quantity": line.quantity}
        if line.price is not None:
            entry["price"] = line.price
        items.append(entry)
    return {"items": items, "lines": len(state.cart), "value": state.cart_value(catalog)}


def assistant_context(
    state: UserState,
    recommendation: dict[str, Any] | None,
    catalog: Catalog,
    config: RulesConfig,
    now: int,
) -> dict[str, Any]:
    """The context document (docs/segments.md, "Assistant context"). `recommendation` is the latest one sent
    for the user (schemas/recommendation.v1.json) or None; `now` is event time."""
    now = max(now, state.last_ts or now)
    recs = (recommendation or {}).get("items", [])[:RECOMMENDATIONS]
    interests = list(profiles.interest_shares(state.profile))[:INTERESTS]
    doc: dict[str, Any] = {
        "user_id": _text(state.user_id),
        "as_of": now,
        "lifecycle": profiles.lifecycle(state.first_ts, state.last_ts, now, config),
        "purchase_intent": state.intent,
        "interests": [_text(c) for c in interests],
        "price_band": profiles.price_band(state.profile, config),
        "orders": max(0, state.profile.orders),
        "recent_views": _recent_views(state, catalog),
        "cart": _cart(state, catalog),
        "recommendations": [_item(r["item_id"], catalog) for r in recs],
        "segments": [_text(s) for s in state.segments],
        "truncated": False,
    }
    return _within_budget(doc)


def context_bytes(doc: dict[str, Any]) -> int:
    return len(json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode())


def _within_budget(doc: dict[str, Any]) -> dict[str, Any]:
    # Shorten the longest list from its tail: the oldest view, the lowest-ranked recommendation, ...
    lists = (doc["recent_views"], doc["recommendations"], doc["cart"]["items"], doc["segments"])
    while context_bytes(doc) > MAX_CONTEXT_BYTES and any(lists):
        doc["truncated"] = True
        max(lists, key=len).pop()
    return doc
