"""Synthetic shop traffic: a catalog, then user sessions interleaved in event-time order.

The output is a plain event log (see `streams.logs`), so it can be written, replayed and diffed like
recorded traffic. Everything is derived from one `random.Random(seed)`: the same config gives the same
records, byte for byte, on every machine.

Shape of the traffic, chosen to exercise the personalization pipeline the way a real shop would:
- item popularity is Zipf-like (a few items get most views) and items sit in categories whose
  prices are lognormal around a per-category median;
- each user has favourite categories and an activity level; sessions are separated by inactivity
  gaps of more than 30 minutes (minutes to days), events within a session by seconds;
- a session browses mostly one category (with repeat views), sometimes searches, adds to and
  removes from its cart, then either abandons the cart or orders exactly its contents; with
  `checkout_rate`, an order is preceded by a `checkout_started` click and that share of the
  abandoned carts starts checking out too (off by default, like `daily_pattern`);
- catalog items carry a picture and a product page on `shop.example`;
- a few placed orders are later cancelled or returned;
- with `daily_pattern`, sessions start more often in the evening than at night (a typical shop's
  hour-of-day curve, `HOURLY_ACTIVITY`, on the UTC clock), so demand has a daily season. It is off
  by default: the default output stays what the shipped model and the tests were built from.
"""

from __future__ import annotations

import heapq
import math
import random
from bisect import bisect
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import accumulate
from typing import Any

from streams.logs import LogRecord

SCHEMA_VERSION = 1
SHOP_URL = "https://shop.example"

# Median price (EUR) and product nouns per category. Unknown category names still work: they get a
# random median price and the category name itself as the noun.
_CATEGORY_PROFILES: dict[str, tuple[float, tuple[str, ...]]] = {
    "electronics": (180.0, ("headphones", "smartphone", "laptop", "charger", "monitor", "speaker")),
    "books": (14.0, ("novel", "cookbook", "thriller", "biography", "comic", "atlas")),
    "fashion": (35.0, ("t-shirt", "jeans", "jacket", "dress", "scarf", "hoodie")),
    "shoes": (70.0, ("sneakers", "boots", "sandals", "loafers", "running shoes", "slippers")),
    "home": (45.0, ("lamp", "pillow", "rug", "vase", "blanket", "mirror")),
    "garden": (30.0, ("hose", "shovel", "planter", "seeds", "grill", "lawn chair")),
    "toys": (25.0, ("puzzle", "doll", "lego set", "board game", "plush bear", "rc car")),
    "sports": (40.0, ("yoga mat", "dumbbells", "football", "tennis racket", "bike helmet", "backpack")),
    "beauty": (18.0, ("lipstick", "shampoo", "perfume", "face cream", "nail polish", "mascara")),
    "grocery": (6.0, ("coffee", "olive oil", "chocolate", "tea", "pasta", "honey")),
}
DEFAULT_CATEGORIES: tuple[str, ...] = tuple(_CATEGORY_PROFILES)
_BRANDS = ("Acme", "Nordlys", "Vela", "Kobold", "Luma", "Ostra", "Pinea", "Terra", "Zeno", "Brio")
_QUERY_ADJECTIVES = ("cheap", "red", "black", "best", "new", "large", "small", "eco", "sale", "premium")

_SECOND = 1000
_MINUTE = 60 * _SECOND
_HOUR = 60 * _MINUTE
_DAY = 24 * _HOUR
# Sessions are split by more than 30 minutes of inactivity, the common web-analytics convention, so
# a consumer that sessionizes by inactivity recovers exactly the generated session ids.
_SESSION_GAP_MIN = 30 * _MINUTE + _SECOND
_EVENT_GAP_MAX = 20 * _MINUTE

# Relative session starts per hour of the day (UTC), mean 1: quiet nights, a lunch bump, an evening
# peak, the shape web shops report for their traffic.
HOURLY_ACTIVITY: tuple[float, ...] = tuple(
    w * 24 / sum(raw)
    for raw in [
        (0.45, 0.28, 0.18, 0.13, 0.12, 0.16, 0.3, 0.55, 0.8, 0.95, 1.05, 1.15,
         1.25, 1.2, 1.1, 1.05, 1.1, 1.25, 1.5, 1.75, 1.9, 1.8, 1.35, 0.8)
    ]
    for w in raw
)  # fmt: skip
_ACTIVITY_BEFORE = tuple(accumulate(HOURLY_ACTIVITY, initial=0.0))  # activity-hours before each hour

# (ts, topic, value) of an event that is generated but not yet emitted; its event_id is still empty.
_Event = tuple[int, str, dict[str, Any]]


@dataclass(frozen=True, slots=True)
class TrafficConfig:
    users: int
    items: int
    events: int
    seed: int = 0
    start_ts: int = 1_700_000_000_000
    categories: tuple[str, ...] = DEFAULT_CATEGORIES
    zipf_exponent: float = 1.0
    price_sigma: float = 0.5
    mean_session_views: float = 7.0
    mean_event_gap_s: float = 20.0
    mean_session_gap_h: float = 30.0  # for a typical user; each user's own mean varies around it
    search_rate: float = 0.15
    cart_rate: float = 0.025
    remove_rate: float = 0.08
    order_rate: float = 0.35
    cancel_rate: float = 0.04
    return_rate: float = 0.06
    in_stock_rate: float = 0.95
    currency: str = "EUR"
    checkout_rate: float = 0.0  # abandoned carts that got as far as checkout; > 0 adds checkout clicks
    daily_pattern: bool = False  # session starts follow HOURLY_ACTIVITY instead of being uniform in time
    days: float | None = None  # stop at this much event time after start_ts (then `events` is a cap)

    def __post_init__(self) -> None:
        if self.users < 1 or self.items < 1 or self.events < 0:
            raise ValueError("users and items must be >= 1 and events >= 0")
        if not self.categories:
            raise ValueError("at least one category is needed")


@dataclass(slots=True)
class _Catalog:
    ids: list[str]
    category_of: list[int]
    prices: list[float]
    in_stock: list[bool]
    cum_weights: list[float]  # popularity over all items, cumulative for bisect sampling
    by_category: list[list[int]] = field(default_factory=list)
    cum_by_category: list[list[float]] = field(default_factory=list)
    nouns: list[tuple[str, ...]] = field(default_factory=list)


@dataclass(slots=True)
class _User:
    user_id: str
    favourites: tuple[int, ...]
    mean_gap_ms: float
    sessions: int = 0


def generate_traffic(config: TrafficConfig) -> Iterator[LogRecord]:
    """Yield one `catalog` record per item, then `config.events` click and order records (fewer if
    `config.days` ends the log first)."""
    rng = random.Random(config.seed)
    catalog = _build_catalog(config, rng)
    for index, item_id in enumerate(catalog.ids):
        yield LogRecord("catalog", item_id, config.start_ts, _catalog_value(config, catalog, index, rng))
    users = _build_users(config, catalog, rng)
    yield from _interleave_sessions(config, catalog, users, rng)


def _build_catalog(config: TrafficConfig, rng: random.Random) -> _Catalog:
    n_categories = len(config.categories)
    # Category sizes vary like real assortments: some categories hold far more items than others.
    category_weights = [rng.lognormvariate(0.0, 0.6) for _ in range(n_categories)]
    category_of = rng.choices(range(n_categories), weights=category_weights, k=config.items)
    medians = [_median_price(name, rng) for name in config.categories]
    prices = [_price(medians[c], config.price_sigma, rng) for c in category_of]
    in_stock = [rng.random() < config.in_stock_rate for _ in range(config.items)]
    # Popularity rank is independent of the item number, so `sku-0` is not automatically the best seller.
    ranks = list(range(1, config.items + 1))
    rng.shuffle(ranks)
    weights = [rank**-config.zipf_exponent for rank in ranks]
    catalog = _Catalog(
        ids=[f"sku-{index}" for index in range(config.items)],
        category_of=category_of,
        prices=prices,
        in_stock=in_stock,
        cum_weights=list(accumulate(weights)),
        nouns=[_CATEGORY_PROFILES.get(name, (0.0, (name,)))[1] for name in config.categories],
    )
    catalog.by_category = [[] for _ in range(n_categories)]
    for index, category in enumerate(category_of):
        catalog.by_category[category].append(index)
    catalog.cum_by_category = [list(accumulate(weights[i] for i in group)) for group in catalog.by_category]
    return catalog


def _median_price(category: str, rng: random.Random) -> float:
    profile = _CATEGORY_PROFILES.get(category)
    # Drawn even for known categories so that the random stream does not depend on the names used.
    drawn = 30.0 * rng.lognormvariate(0.0, 1.0)
    return profile[0] if profile else drawn


def _price(median: float, sigma: float, rng: random.Random) -> float:
    raw = median * rng.lognormvariate(0.0, sigma)
    # Shops price at .99; anything under a euro stays at 0.99.
    return math.floor(raw) + 0.99 if raw >= 1.0 else 0.99


def _catalog_value(
    config: TrafficConfig, catalog: _Catalog, index: int, rng: random.Random
) -> dict[str, Any]:
    category = catalog.category_of[index]
    noun = rng.choice(catalog.nouns[category])
    title = f"{rng.choice(_BRANDS)} {noun} {rng.choice('ABCDEFGHKMRSTX')}{rng.randint(1, 999)}"
    return {
        "schema_version": SCHEMA_VERSION,
        "item_id": catalog.ids[index],
        "ts": config.start_ts,
        "price": catalog.prices[index],
        "in_stock": catalog.in_stock[index],
        "category": config.categories[category],
        "title": title,
        "image_url": f"{SHOP_URL}/img/{catalog.ids[index]}.jpg",
        "url": f"{SHOP_URL}/p/{catalog.ids[index]}",
    }


def _build_users(config: TrafficConfig, catalog: _Catalog, rng: random.Random) -> list[_User]:
    # Users favour popular categories, in proportion to the traffic their items attract.
    category_traffic = [cum[-1] if cum else 0.0 for cum in catalog.cum_by_category]
    populated = [c for c, traffic in enumerate(category_traffic) if traffic > 0]
    weights = [category_traffic[c] for c in populated]
    typical_gap = config.mean_session_gap_h * _HOUR
    users: list[_User] = []
    for index in range(config.users):
        favourites = tuple(rng.choices(populated, weights=weights, k=2))
        # Activity is heavy-tailed: a few users come back every few hours, most every few days.
        users.append(_User(f"u{index}", favourites, typical_gap * rng.lognormvariate(0.0, 1.0)))
    return users


# A heap entry: (ts of the next event, tie-break sequence, user index or -1, pending events, position).
# `pending` is None for a session that has not been generated yet; it is generated lazily when it
# starts, so huge user counts cost nothing until those users actually show up.
_Entry = tuple[int, int, int, list[_Event] | None, int]


def _interleave_sessions(
    config: TrafficConfig, catalog: _Catalog, users: list[_User], rng: random.Random
) -> Iterator[LogRecord]:
    heap: list[_Entry] = []
    sequence = 0
    later = _after_daily if config.daily_pattern else _after
    end_ts = None if config.days is None else config.start_ts + int(config.days * _DAY)
    for index, user in enumerate(users):
        first = later(config.start_ts, int(rng.expovariate(1.0 / user.mean_gap_ms)))
        heap.append((first, sequence, index, None, 0))
        sequence += 1
    heapq.heapify(heap)
    prefix = f"g{config.seed}-"
    emitted = 0
    while emitted < config.events:
        ts, _, user_index, pending, position = heap[0]
        if end_ts is not None and ts >= end_ts:
            return
        follow_ups: list[_Event] = []
        if pending is None:
            pending = _session(config, catalog, users[user_index], ts, rng)
            follow_ups = _follow_ups(config, pending[-1], rng)
        event_ts, topic, value = pending[position]
        value["event_id"] = f"{prefix}{emitted}"
        yield LogRecord(topic, value["user_id"], event_ts, value)
        emitted += 1
        # heapreplace (one sift instead of pop + push) is what keeps this loop at >100k events/s.
        if position + 1 < len(pending):
            heapq.heapreplace(heap, (pending[position + 1][0], sequence, user_index, pending, position + 1))
        elif user_index >= 0:
            gap = max(_SESSION_GAP_MIN, int(rng.expovariate(1.0 / users[user_index].mean_gap_ms)))
            start = max(event_ts + _SESSION_GAP_MIN, later(event_ts, gap))
            heapq.heapreplace(heap, (start, sequence, user_index, None, 0))
        else:
            heapq.heappop(heap)
        sequence += 1
        for follow_up in follow_ups:
            heapq.heappush(heap, (follow_up[0], sequence, -1, [follow_up], 0))
            sequence += 1


def _after(ts: int, gap: int) -> int:
    return ts + gap


def _after_daily(ts: int, gap: int) -> int:
    """`gap` ms of activity after `ts`: time runs through busy hours faster than through quiet ones
    (a time change that turns uniform session starts into starts that follow HOURLY_ACTIVITY)."""
    return _clock_time(_activity_time(ts) + gap)


def _activity_time(ts: int) -> float:
    day, into_day = divmod(ts, _DAY)
    hour, into_hour = divmod(into_day, _HOUR)
    return day * _DAY + _ACTIVITY_BEFORE[hour] * _HOUR + HOURLY_ACTIVITY[hour] * into_hour


def _clock_time(activity: float) -> int:
    day, into_day = divmod(activity, _DAY)
    hour = min(bisect(_ACTIVITY_BEFORE, into_day / _HOUR) - 1, 23)
    into_hour = (into_day - _ACTIVITY_BEFORE[hour] * _HOUR) / HOURLY_ACTIVITY[hour]
    return int(day) * _DAY + hour * _HOUR + int(into_hour)


def _session(
    config: TrafficConfig, catalog: _Catalog, user: _User, ts: int, rng: random.Random
) -> list[_Event]:
    """All events of one session, in time order: browse, maybe cart, then abandon or order."""
    session_id = f"{user.user_id}-s{user.sessions}"
    user.sessions += 1
    session = _SessionBuilder(config, catalog, user, session_id, ts, rng)
    category = rng.choice(user.favourites) if rng.random() < 0.75 else session.popular_category()
    if rng.random() < config.search_rate:
        session.search(category)
    views = 1 + int(rng.expovariate(1.0 / config.mean_session_views))
    for _ in range(min(views, 60)):
        category = session.browse(category)
    session.finish()
    return session.events


class _SessionBuilder:
    __slots__ = ("cart", "catalog", "config", "events", "rng", "session_id", "ts", "user", "viewed")

    def __init__(
        self,
        config: TrafficConfig,
        catalog: _Catalog,
        user: _User,
        session_id: str,
        ts: int,
        rng: random.Random,
    ) -> None:
        self.config = config
        self.catalog = catalog
        self.user = user
        self.session_id = session_id
        self.ts = ts
        self.rng = rng
        self.events: list[_Event] = []
        self.cart: dict[int, int] = {}  # item index -> quantity, in the order items were first added
        self.viewed: list[int] = []

    def popular_category(self) -> int:
        return self.catalog.category_of[self._popular_item()]

    def _popular_item(self) -> int:
        cum = self.catalog.cum_weights
        return bisect(cum, self.rng.random() * cum[-1])

    def _item_in(self, category: int) -> int:
        cum = self.catalog.cum_by_category[category]
        return self.catalog.by_category[category][bisect(cum, self.rng.random() * cum[-1])]

    def _advance(self) -> int:
        # Dwell times are lognormal: mostly seconds, occasionally several minutes.
        gap = self.config.mean_event_gap_s * _SECOND * self.rng.lognormvariate(-0.5, 1.0)
        self.ts += min(_EVENT_GAP_MAX, max(_SECOND, int(gap)))
        return self.ts

    def _click(self, kind: str, **fields: Any) -> None:
        value = {
            "schema_version": SCHEMA_VERSION,
            "event_id": "",  # assigned in emission order, so ids count up through the log
            "user_id": self.user.user_id,
            "type": kind,
            "ts": self.ts,
            "session_id": self.session_id,
            **fields,
        }
        self.events.append((self.ts, "clicks", value))

    def _item_fields(self, item: int) -> dict[str, Any]:
        catalog = self.catalog
        return {
            "item_id": catalog.ids[item],
            "category": self.config.categories[catalog.category_of[item]],
            "price": catalog.prices[item],
        }

    def search(self, category: int) -> None:
        rng = self.rng
        noun = rng.choice(self.catalog.nouns[category])
        query = f"{rng.choice(_QUERY_ADJECTIVES)} {noun}" if rng.random() < 0.4 else noun
        if self.events:
            self._advance()
        self._click("search", query=query)

    def browse(self, category: int) -> int:
        """One view, maybe followed by a cart change; returns the category browsing continues in."""
        rng = self.rng
        if self.events:
            self._advance()
        roll = rng.random()
        if self.viewed and roll < 0.2:
            item = rng.choice(self.viewed)  # shoppers go back to compare
        elif roll < 0.9:
            item = self._item_in(category)
        else:
            item = self._popular_item()  # drifting to something else that is popular
            category = self.catalog.category_of[item]
        self.viewed.append(item)
        self._click("view", **self._item_fields(item))
        if self.catalog.in_stock[item] and rng.random() < self.config.cart_rate:
            self._add_to_cart(item)
        elif self.cart and rng.random() < self.config.remove_rate:
            self._remove_from_cart()
        elif rng.random() < self.config.search_rate / 4:
            self.search(category)
        return category

    def _add_to_cart(self, item: int) -> None:
        roll = self.rng.random()
        quantity = 1 if roll < 0.85 else 2 if roll < 0.96 else self.rng.randint(3, 6)
        self.cart[item] = self.cart.get(item, 0) + quantity
        self._advance()
        self._click("add_to_cart", **self._item_fields(item), quantity=quantity)

    def _remove_from_cart(self) -> None:
        item = self.rng.choice(list(self.cart))
        quantity = self.cart.pop(item)
        self._advance()
        self._click("remove_from_cart", item_id=self.catalog.ids[item], quantity=quantity)

    def finish(self) -> None:
        """Check out the cart, or leave it abandoned (maybe after starting to check out)."""
        if not self.cart:
            return
        ordering = self.rng.random() < self.config.order_rate
        # Drawn only when checkouts are on, so the default traffic stays what it always was.
        if self.config.checkout_rate > 0 and (ordering or self.rng.random() < self.config.checkout_rate):
            self._advance()
            self._click("checkout_started")
        if not ordering:
            return
        self.ts += self.rng.randint(30 * _SECOND, 5 * _MINUTE)  # filling in the checkout form
        ids, prices = self.catalog.ids, self.catalog.prices
        items = [{"item_id": ids[i], "quantity": q, "price": prices[i]} for i, q in self.cart.items()]
        order = {
            "schema_version": SCHEMA_VERSION,
            "event_id": "",
            "user_id": self.user.user_id,
            "order_id": f"{self.session_id}-o",
            "status": "placed",
            "items": items,
            "ts": self.ts,
            "total": round(sum(prices[i] * q for i, q in self.cart.items()), 2),
            "currency": self.config.currency,
        }
        self.events.append((self.ts, "orders", order))


def _follow_ups(config: TrafficConfig, last: _Event, rng: random.Random) -> list[_Event]:
    """A later cancellation or return of the order that ended a session, if any."""
    ts, topic, placed = last
    if topic != "orders":
        return []
    roll = rng.random()
    if roll < config.cancel_rate:
        status, delay = "cancelled", rng.randint(10 * _MINUTE, 2 * _DAY)
    elif roll < config.cancel_rate + config.return_rate:
        status, delay = "returned", rng.randint(3 * _DAY, 30 * _DAY)
    else:
        return []
    later = {**placed, "event_id": "", "status": status, "ts": ts + delay}
    later["items"] = [dict(line) for line in placed["items"]]  # no aliasing between the two events
    return [(ts + delay, "orders", later)]
