"""Promotion triggers: when to reach out, and the policy that decides whether we may.

Rules look at a user's state (and, for high intent, the model's output) in event time. Timers live
in the state; `schedule` recomputes them from the facts after every event, so they are a pure
function of the state. Policy runs before anything leaves: consent, frequency caps per kind and
overall, and exit on conversion (an order clears the pending cart and checkout timers).
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable
from dataclasses import dataclass
from itertools import islice
from operator import attrgetter
from typing import Any

from streams.core import trigger_payload
from streams.core.catalog import Catalog, CatalogItem
from streams.core.config import MINUTE, RulesConfig
from streams.core.events import SCHEMA_VERSION, Click, Order, UserEvent
from streams.core.ids import stable_id
from streams.core.state import UserState

CART = "cart_abandonment"
BROWSE = "browse_abandonment"
HIGH_INTENT = "high_intent"
PRICE_DROP = "price_drop"
BACK_IN_STOCK = "back_in_stock"
WIN_BACK = "win_back"
CHECKOUT = "checkout_abandonment"

FIRED_HISTORY = 20
WATCHED_ITEMS = 20
DUPLICATE = "duplicate"  # a trigger already sent with this id (emitted before a crash)
_event_ts = attrgetter("ts")
_CARTED = ("add_to_cart", "order_placed")  # event kinds that end browsing in a session

# Told of every trigger the policy refuses: (kind, reason). An observer only: it changes nothing.
Refused = Callable[[str, str], None]


@dataclass(frozen=True, slots=True)
class Candidate:
    kind: str
    anchor: str  # what makes this trigger unique: a due time, a cause event, a catalog version
    ts: int
    items: list[dict[str, Any]]
    reason: str
    cause_event_id: str | None = None


# -- timers ---------------------------------------------------------------------------------------


def _session_item_views(state: UserState) -> dict[str, int]:
    """Views per item in the current session (what a browse trigger names)."""
    start = state.session.start_ts if state.session is not None else 0
    items: dict[str, int] = {}
    # `recent` is sorted by event time: the session is its tail.
    for event in islice(state.recent, bisect_left(state.recent, start, key=_event_ts), None):
        if event.kind == "view" and event.item_id is not None:
            items[event.item_id] = items.get(event.item_id, 0) + 1
    return items


def _browsing(state: UserState, config: RulesConfig) -> bool:
    """The session viewed one item `browse_item_views` times or one category `browse_category_views`
    times, and neither added to a cart nor ordered. Runs after every event: one pass over the
    session, newest first (no search for where it starts), that stops counting views once a count
    reaches its bound (it still looks at every event for a cart add or an order)."""
    if state.cart:
        return False
    start = state.session.start_ts if state.session is not None else 0
    item_bound, category_bound = config.browse_item_views, config.browse_category_views
    items: dict[str, int] = {}
    categories: dict[str, int] = {}
    reached = False
    for event in reversed(state.recent):  # sorted by event time: the session is its tail
        if event.ts < start:
            break
        kind = event.kind
        if kind == "view":
            item = event.item_id
            if reached or item is None:
                continue
            views = items[item] = items.get(item, 0) + 1
            reached = views >= item_bound
            if category := event.category:
                views = categories[category] = categories.get(category, 0) + 1
                reached = reached or views >= category_bound
        elif kind in _CARTED:
            return False
    return reached


def schedule(state: UserState, event: UserEvent, config: RulesConfig) -> None:
    """Recompute the user's timers from the facts (mutates `state`, a fresh copy)."""
    enabled = config.enabled_triggers
    last = state.last_ts or 0
    timers = state.timers
    converted = isinstance(event, Order) and event.status == "placed"
    if CHECKOUT not in enabled or converted:
        timers.pop(CHECKOUT, None)
    elif isinstance(event, Click) and event.type == "checkout_started":
        # Due a fixed time after the checkout began (later activity does not move it); set only by
        # the checkout itself, so once fired it stays gone until the next checkout.
        timers[CHECKOUT] = max(timers.get(CHECKOUT, 0), event.ts + config.checkout_timeout_ms)
    # A cart whose checkout has begun is followed up as an abandoned checkout, not twice.
    waiting = CHECKOUT in enabled and _checkout_pending(state, config)
    if CART in enabled and state.cart and not converted and not waiting:
        timers[CART] = last + config.cart_timeout_ms
    else:
        timers.pop(CART, None)
    if BROWSE in enabled and _browsing(state, config):
        timers[BROWSE] = last + config.browse_timeout_ms
    else:
        timers.pop(BROWSE, None)
    if WIN_BACK in enabled and state.purchases:
        timers[WIN_BACK] = last + config.win_back_after_ms
    else:
        timers.pop(WIN_BACK, None)


def _checkout_pending(state: UserState, config: RulesConfig) -> bool:
    """A checkout began less than `checkout_timeout_ms` before the shopper's latest event and no
    order followed. Judged on the facts alone, not on the timer (which firing removes), so it does
    not depend on how events were batched."""
    if not state.counters.get("checkout_started"):
        return False  # never began one (`recent` holds only counted events)
    # `recent` is sorted by event time: the last checkout in it is the latest.
    started = next((e.ts for e in reversed(state.recent) if e.kind == "checkout_started"), None)
    if started is None or started + config.checkout_timeout_ms <= (state.last_ts or 0):
        return False
    return not any(e.kind == "order_placed" and e.ts >= started for e in state.recent)


def due_candidate(state: UserState, kind: str, due: int, config: RulesConfig) -> Candidate | None:
    """The trigger a timer fires, if its condition still holds at its due time."""
    if state.timers.get(kind) != due:
        return None  # moved or cleared since it was indexed
    if kind == CART and state.cart:
        items = _cart_items(state)
        minutes = config.cart_timeout_ms // MINUTE
        reason = f"{len(items)} item(s) in cart, no activity for {minutes} min"
        return Candidate(CART, str(due), due, items, reason)
    if kind == CHECKOUT and state.cart:
        started = due - config.checkout_timeout_ms
        if any(started <= p.ts <= due for p in state.purchases.values()):
            return None  # ordered after all (an order that arrived out of event-time order)
        items = _cart_items(state)
        minutes = config.checkout_timeout_ms // MINUTE
        reason = f"checkout of {len(items)} item(s) started, no order within {minutes} min"
        return Candidate(CHECKOUT, str(due), due, items, reason)
    if kind == BROWSE and _browsing(state, config):
        views = _session_item_views(state)
        top = sorted(views.items(), key=lambda kv: (-kv[1], kv[0]))[:3]
        items = [{"item_id": item} for item, _ in top]
        reason = (
            f"viewed {top[0][0]} {top[0][1]} times without adding to cart" if top else "browsed without cart"
        )
        return Candidate(BROWSE, str(due), due, items, reason)
    if kind == WIN_BACK and state.purchases:
        recent = sorted(state.purchases.items(), key=lambda kv: (-kv[1].ts, kv[0]))[:3]
        days = config.win_back_after_ms // (24 * 60 * MINUTE)
        return Candidate(
            WIN_BACK, str(due), due, [{"item_id": i} for i, _ in recent], f"no activity for {days} days"
        )
    return None


def _cart_items(state: UserState) -> list[dict[str, Any]]:
    return [
        {"item_id": item, "quantity": line.quantity, **({"price": line.price} if line.price else {})}
        for item, line in sorted(state.cart.items())
    ]


# -- immediate rules --------------------------------------------------------------------------------


def high_intent_candidate(
    state: UserState, event: UserEvent, intent: float, top_items: list[str], config: RulesConfig
) -> Candidate | None:
    if HIGH_INTENT not in config.enabled_triggers or intent < config.high_intent_threshold:
        return None
    session_start = state.session.start_ts if state.session is not None else 0
    if any(p.ts >= session_start and p.status == "placed" for p in state.purchases.values()):
        return None  # already bought in this session
    items = [{"item_id": i} for i in (sorted(state.cart) or top_items[:3])]
    reason = f"purchase intent {intent:.2f} >= {config.high_intent_threshold:.2f} and no order this session"
    return Candidate(HIGH_INTENT, event.event_id, event.ts, items, reason, cause_event_id=event.event_id)


def watch_item(state: UserState, item_id: str, price: float | None, in_stock: bool | None, ts: int) -> None:
    """Remember what the shopper saw, to notice a later price drop or restock (mutates `state`)."""
    state.watch[item_id] = [price, in_stock, ts]
    if len(state.watch) > WATCHED_ITEMS:
        oldest = min(state.watch, key=lambda k: (state.watch[k][2], k))
        del state.watch[oldest]


def catalog_candidates(state: UserState, item: CatalogItem, config: RulesConfig) -> list[Candidate]:
    """Triggers a catalog change causes for one watching user; updates what the user 'saw' (mutates)."""
    seen = state.watch.get(item.item_id)
    if seen is None:
        return []
    price_seen, stock_seen, seen_ts = seen
    out = []
    anchor = f"{item.item_id}@{item.ts}"
    entry = {"item_id": item.item_id, **({"price": item.price} if item.price is not None else {})}
    if (
        PRICE_DROP in config.enabled_triggers
        and item.price is not None
        and price_seen
        and item.price <= price_seen * (1 - config.price_drop_min_fraction)
    ):
        reason = f"{item.item_id} dropped from {price_seen:.2f} to {item.price:.2f}"
        out.append(Candidate(PRICE_DROP, anchor, item.ts, [entry], reason))
    if BACK_IN_STOCK in config.enabled_triggers and stock_seen is False and item.in_stock:
        out.append(Candidate(BACK_IN_STOCK, anchor, item.ts, [entry], f"{item.item_id} is back in stock"))
    state.watch[item.item_id] = [
        item.price if item.price is not None else price_seen,
        item.in_stock if item.in_stock is not None else stock_seen,
        seen_ts,
    ]
    return out


# -- policy -----------------------------------------------------------------------------------------


def refusal(facts: UserState, ledger: UserState, candidate: Candidate, config: RulesConfig) -> str | None:
    """Why the policy refuses this trigger, or None if it may leave. `facts` is the state as of the
    trigger's moment (consent), `ledger` holds every trigger already sent (caps)."""
    if facts.consent is False:
        return "opted_out"
    if config.require_opt_in and facts.consent is not True:
        return "no_opt_in"
    since = candidate.ts - config.cap_window_ms
    recent = [kind for ts, kind, _ in ledger.fired if ts > since]
    if sum(1 for kind in recent if kind == candidate.kind) >= config.cap_per_kind:
        return "cap_per_kind"
    if len(recent) >= config.cap_overall:
        return "cap_overall"
    return None


def admit(
    facts: UserState,
    ledger: UserState,
    candidate: Candidate,
    config: RulesConfig,
    refused: Refused | None = None,
    catalog: Catalog | None = None,
) -> dict[str, Any] | None:
    """Apply policy; if admitted, record it in `ledger` (mutates it) and return the trigger event,
    its items described as `catalog` knows them now (streams.core.trigger_payload)."""
    if (reason := refusal(facts, ledger, candidate, config)) is not None:
        if refused is not None:
            refused(candidate.kind, reason)
        return None
    trigger_id = stable_id("t", ledger.user_id, candidate.kind, candidate.anchor)
    if any(tid == trigger_id for _, _, tid in ledger.fired):
        if refused is not None:
            refused(candidate.kind, DUPLICATE)
        return None  # already emitted before a crash: same id, nothing new to say
    ledger.fired.append([candidate.ts, candidate.kind, trigger_id])
    del ledger.fired[:-FIRED_HISTORY]
    items = trigger_payload.enriched_items(candidate.items, catalog)
    value: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "trigger_id": trigger_id,
        "user_id": ledger.user_id,
        "kind": candidate.kind,
        "items": items,
        "reason": candidate.reason,
        "ts": candidate.ts,
        "expires_at": candidate.ts + config.trigger_ttl_ms,
        "replay": facts.replayed,
    }
    if candidate.cause_event_id is not None:
        value["cause_event_id"] = candidate.cause_event_id
    if candidate.kind in trigger_payload.CART_KINDS:
        value["value"] = trigger_payload.cart_value(items)
        value["currency"] = config.currency
    template = config.trigger_links.get(candidate.kind, config.trigger_links.get(trigger_payload.ANY_KIND))
    if (url := trigger_payload.link(template, ledger.user_id, trigger_id, candidate.kind)) is not None:
        value["link"] = url
    return value
