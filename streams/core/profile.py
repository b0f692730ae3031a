"""Shopper profile kept in the user state: decayed interest per category, typical price, and
recency / frequency / monetary value; plus the read-only views derived from it (lifecycle stage,
price band, the `GET /users/{id}/profile` document).

Everything is in event time and bounded. Interest comes from clicks only and the order facts are
integer sums and maxima, so the profile, like the rest of the state, depends only on each topic's
own order and never on how clicks and orders interleave (tests/core/test_state.py checks it).
Scores are integers (milli-points, cents): compact in msgpack and exact to add.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from streams.core.config import DAY, RulesConfig
from streams.core.events import Click, Order

if TYPE_CHECKING:  # state.py holds a Profile: import it for types only
    from streams.core.state import UserState

INTEREST_HALF_LIFE_MS = 7 * DAY
# Milli-points a click adds to its category's interest: a cart add says more than a view.
CLICK_INTEREST = {"view": 1000, "search": 1000, "add_to_cart": 3000}
PRICE_SMOOTHING = 0.2  # weight of the newest price in the typical price (a moving geometric mean)
PRICE_BANDS = ("budget", "mid", "upper", "premium")  # split at RulesConfig.price_band_edges
LIFECYCLE_STAGES = ("new", "active", "at_risk", "lapsed")
_new_object = object.__new__  # an instance with its slots unset (`Profile.copy` fills them)


@dataclass(slots=True)
class Profile:
    interest_ts: int | None = None  # the event time `interest` is decayed to (its newest click)
    interest: dict[str, int] = field(default_factory=dict)  # category -> milli-points
    price_cents: int | None = None  # typical price of what the shopper views and carts
    orders: int = 0  # placed minus cancelled
    spend_cents: int = 0  # placed minus cancelled or returned
    last_order_ts: int | None = None

    def copy(self) -> Profile:
        """A copy for the transition to change (`UserState.copy`): fills the slots directly, cheaper
        than the dataclass constructor."""
        new = _new_object(Profile)
        new.interest_ts = self.interest_ts
        new.interest = self.interest.copy()
        new.price_cents = self.price_cents
        new.orders = self.orders
        new.spend_cents = self.spend_cents
        new.last_order_ts = self.last_order_ts
        return new

    def to_wire(self) -> list[Any]:
        interest = dict(sorted(self.interest.items()))
        last_order = self.last_order_ts
        return [self.interest_ts, interest, self.price_cents, self.orders, self.spend_cents, last_order]

    @classmethod
    def from_wire(cls, raw: list[Any] | None) -> Profile:
        return cls() if raw is None else cls(*raw)


# -- updates (mutate a fresh copy, from apply_event) -------------------------------------------------


def on_click(profile: Profile, click: Click, category: str | None, price: float | None, cap: int) -> None:
    weight = CLICK_INTEREST.get(click.type)
    if weight is not None and category:
        _add_interest(profile, category, weight, click.ts, cap)
    if price is not None and price > 0 and click.type in ("view", "add_to_cart"):
        cents = max(1, round(price * 100))
        old = profile.price_cents
        profile.price_cents = (
            cents
            if old is None
            else round(math.exp((1 - PRICE_SMOOTHING) * math.log(old) + PRICE_SMOOTHING * math.log(cents)))
        )


def on_order(profile: Profile, order: Order) -> None:
    value = order.total
    if value is None:
        value = sum(line.price * line.quantity for line in order.items if line.price is not None)
    cents = round(value * 100)
    if order.status == "placed":
        profile.orders += 1
        profile.spend_cents += cents
        last = profile.last_order_ts
        profile.last_order_ts = order.ts if last is None else max(last, order.ts)
    else:
        profile.spend_cents -= cents
        if order.status == "cancelled":
            profile.orders -= 1


def _decay(points: int, elapsed_ms: int) -> int:
    return round(points * 0.5 ** (elapsed_ms / INTEREST_HALF_LIFE_MS))


def _add_interest(profile: Profile, category: str, weight: int, ts: int, cap: int) -> None:
    ref = profile.interest_ts
    if ref is None or ts > ref:
        if ref is not None:
            factor = 0.5 ** ((ts - ref) / INTEREST_HALF_LIFE_MS)  # `_decay`'s, the same for every category
            profile.interest = {c: q for c, p in profile.interest.items() if (q := round(p * factor)) > 0}
        profile.interest_ts = ts
        added = weight
    else:
        added = _decay(weight, ref - ts)  # a late click counts as much as it would have by now
    interest = profile.interest
    interest[category] = interest.get(category, 0) + added
    while len(interest) > cap:
        # The category just clicked stays: a new interest must be able to push out a fading one.
        weakest = min((c for c in interest if c != category), key=lambda c: (interest[c], c))
        del interest[weakest]


# -- read-only views -----------------------------------------------------------------------------------


def interest_at(profile: Profile, now: int) -> dict[str, float]:
    """Points per category decayed to `now` (a view is worth 1.0 when it happens), strongest first."""
    ref = profile.interest_ts if profile.interest_ts is not None else now
    factor = 0.5 ** (max(0, now - ref) / INTEREST_HALF_LIFE_MS)
    ranked = sorted(profile.interest.items(), key=lambda kv: (-kv[1], kv[0]))
    return {c: round(p * factor / 1000, 4) for c, p in ranked}


def interest_shares(profile: Profile) -> dict[str, float]:
    """Each category's share of the shopper's interest (sums to 1; decay does not change shares)."""
    total = sum(profile.interest.values())
    ranked = sorted(profile.interest.items(), key=lambda kv: (-kv[1], kv[0]))
    return {c: round(p / total, 4) for c, p in ranked} if total else {}


def top_category(profile: Profile) -> str | None:
    """The category of strongest interest (ties by name): the first of `interest_shares`."""
    interest = profile.interest
    if not sum(interest.values()):
        return None
    if len(interest) == 1:  # the most common profile, read after every event: no search
        return next(iter(interest))
    strongest = max(interest.values())
    return min(c for c, points in interest.items() if points == strongest)


def price_band(profile: Profile, config: RulesConfig) -> str | None:
    """The band of the first edge above the typical price (the edges ascend: RulesConfig.from_mapping
    requires it), the last band at or above every edge."""
    if profile.price_cents is None:
        return None
    return PRICE_BANDS[bisect_right(config.price_band_edges, profile.price_cents / 100)]


def lifecycle(first_ts: int | None, last_ts: int | None, now: int, config: RulesConfig) -> str:
    """new (first seen recently), active, at_risk (quiet for a while), lapsed (quiet for long)."""
    if first_ts is None or last_ts is None:
        return "new"
    quiet = now - last_ts
    if quiet >= config.lifecycle_lapsed_ms:
        return "lapsed"
    if quiet >= config.lifecycle_at_risk_ms:
        return "at_risk"
    if now - first_ts < config.lifecycle_new_ms:
        return "new"
    return "active"


def lifecycle_boundaries(first_ts: int | None, last_ts: int | None, config: RulesConfig) -> list[int]:
    """The event times at which `lifecycle` can change without a new event."""
    if first_ts is None or last_ts is None:
        return []
    return sorted(
        {
            first_ts + config.lifecycle_new_ms,
            last_ts + config.lifecycle_at_risk_ms,
            last_ts + config.lifecycle_lapsed_ms,
        }
    )


def days_between(then: int | None, now: int) -> float | None:
    return None if then is None else round(max(0, now - then) / DAY, 3)


def profile_document(state: UserState, config: RulesConfig, now: int) -> dict[str, Any]:
    """`GET /users/{id}/profile`: who this shopper is, as of event time `now` (docs/segments.md, "Profiles").
    Bounded: at most `StateLimits.interest_categories` interests, everything else a scalar."""
    p = state.profile
    now = max(now, state.last_ts or now)
    band = price_band(p, config)
    shares = interest_shares(p)
    return {
        "user_id": state.user_id,
        "as_of": now,
        "lifecycle": lifecycle(state.first_ts, state.last_ts, now, config),
        "first_seen": state.first_ts,
        "last_seen": state.last_ts,
        "interests": [
            {"category": c, "score": score, "share": shares[c]} for c, score in interest_at(p, now).items()
        ],
        "price": {"typical": None if p.price_cents is None else p.price_cents / 100, "band": band},
        "rfm": {
            "recency_days": days_between(p.last_order_ts, now),
            "frequency": max(0, p.orders),
            "monetary": max(0, p.spend_cents) / 100,
        },
        "events": sum(state.counters.values()),
        "purchase_intent": state.intent,
        "segments": list(state.segments),
    }
