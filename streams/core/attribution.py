"""Click-back attribution: which recommendations a shopper was shown, clicked, and bought from.

A frontend reports what it showed with an `impression` click (the recommendation's `rec_id`, the
`placement`, the items shown) and tags a click on a recommended item with the same `rec_id` (and
its `position` and `placement`). Such a click is a *touch* on the item. An add-to-cart or a placed
order of an item is attributed to the shopper's latest touch on that item whose event time is at
most the attribution window before it (last touch); an order that carries a `rec_id` itself is
attributed whole to that recommendation. Counts go per model version and placement into the
partition's `AttributionCounts`: impressions, clicks, add-to-carts, orders and revenue.

Everything is judged on the shopper's state and the event alone, in event time, so a replay of a
log counts exactly what the worker counted. The model version of a recommendation is found among the
shopper's latest recommendation as of the event before, and the impressions it recorded; a
`rec_id` found in neither counts under `unknown`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from streams.core.events import Click, Order, UserEvent

IMPRESSION = "impression"
UNKNOWN_VERSION = "unknown"
UNSPECIFIED_PLACEMENT = "unspecified"
OTHER = "other"  # placements (or versions) beyond the caps below count together under this name
MEASURES = ("impressions", "clicks", "add_to_carts", "orders", "revenue_cents")
IMPRESSIONS, CLICKS, ADD_TO_CARTS, ORDERS, REVENUE_CENTS = range(len(MEASURES))

TOUCH_CLICKS = ("view", "add_to_cart")  # what a click on a recommended item may be
SHOWN_KEPT = 4  # impressions a shopper's state remembers (their versions, and repeats)
TOUCHES_KEPT = 8  # items a shopper's state remembers a click on a recommendation for
MAX_VERSIONS = 16
MAX_PLACEMENTS = 32  # per version: placements are client strings, the partition state stays bounded


def is_impression(event: UserEvent) -> bool:
    return isinstance(event, Click) and event.type == IMPRESSION


def is_impression_value(value: Mapping[str, Any]) -> bool:
    """The same for an event as a log holds it (training reads logs without typing them)."""
    return value.get("type") == IMPRESSION


@dataclass(frozen=True, slots=True)
class Attribution:
    """A shopper's part: the last impressions ([rec_id, version, placement], oldest first) and the
    last touch per item ([item_id, ts, version, placement], oldest first). Replaced whole, never
    changed in place (state copies share it)."""

    shown: tuple[tuple[str, str, str], ...] = ()
    touches: tuple[tuple[str, int, str, str], ...] = ()

    def to_wire(self) -> list[Any]:
        return [[list(s) for s in self.shown], [list(t) for t in self.touches]]

    @classmethod
    def from_wire(cls, raw: list[Any] | None) -> Attribution | None:
        if raw is None:
            return None
        shown, touches = raw
        return cls(tuple(tuple(s) for s in shown), tuple(tuple(t) for t in touches))  # type: ignore[misc]

    def version_of(self, rec_id: str) -> tuple[str, str] | None:
        """(version, placement) of an impression of `rec_id` the shopper was shown, newest first."""
        for shown_id, version, placement in reversed(self.shown):
            if shown_id == rec_id:
                return version, placement
        return None

    def last_touch(self, item_id: str, ts: int, window_ms: int) -> tuple[str, str] | None:
        """(version, placement) of the touch on `item_id` that attributes a conversion at `ts`."""
        for touched, at, version, placement in self.touches:
            if touched == item_id and at <= ts <= at + window_ms:
                return version, placement
        return None


_NOTHING = Attribution()


@dataclass(slots=True)
class AttributionCounts:
    """A partition's counts: model version -> placement -> the MEASURES, as integers (revenue in
    cents) so that adding partitions up is exact in any order."""

    counts: dict[str, dict[str, list[int]]] = field(default_factory=dict)
    changes: int = 0  # additions so far (not stored): tells the adapter the partition changed

    def add(self, version: str, placement: str, measure: int, amount: int = 1) -> None:
        self.changes += 1
        if version not in self.counts and len(self.counts) >= MAX_VERSIONS:
            version = OTHER
        places = self.counts.setdefault(version, {})
        if placement not in places and len(places) >= MAX_PLACEMENTS:
            placement = OTHER
        row = places.setdefault(placement, [0] * len(MEASURES))
        row[measure] += amount

    def __bool__(self) -> bool:
        return bool(self.counts)

    def to_wire(self) -> dict[str, dict[str, list[int]]]:
        return self.counts

    def snapshot(self) -> dict[str, dict[str, list[int]]]:
        """A copy, safe to take while another thread counts (each step is one atomic dict copy)."""
        return {
            v: {p: list(row) for p, row in list(places.items())} for v, places in list(self.counts.items())
        }

    @classmethod
    def from_wire(cls, raw: Mapping[str, Mapping[str, list[int]]] | None) -> AttributionCounts:
        return cls({v: {p: list(row) for p, row in places.items()} for v, places in (raw or {}).items()})


def attribute(
    attribution: Attribution | None,
    event: UserEvent,
    latest: list[Any] | None,
    window_ms: int,
    counts: AttributionCounts,
) -> Attribution | None:
    """Count what `event` says about recommendations; return the shopper's new part (the same
    object when nothing changed). `latest`: the shopper's latest recommendation as of the event
    before (the user state's compact form: rec_id first, model version fourth)."""
    part = attribution or _NOTHING
    if isinstance(event, Order):
        _order(part, event, latest, window_ms, counts)
        return attribution
    if event.type == IMPRESSION:
        return _impression(part, event, latest, counts) or attribution
    if event.rec_id is not None and event.item_id is not None and event.type in TOUCH_CLICKS:
        version, placement = _resolve(part, event.rec_id, event.placement, latest)
        counts.add(version, placement, CLICKS)
        if event.type == "add_to_cart":
            counts.add(version, placement, ADD_TO_CARTS)
        return _touch(part, event.item_id, event.ts, version, placement, window_ms)
    if event.type == "add_to_cart" and event.item_id is not None:
        touch = part.last_touch(event.item_id, event.ts, window_ms)
        if touch is not None:
            counts.add(*touch, ADD_TO_CARTS)
    return attribution


def _impression(
    part: Attribution, click: Click, latest: list[Any] | None, counts: AttributionCounts
) -> Attribution | None:
    assert click.rec_id is not None  # the schema requires it of an impression
    placement = click.placement or UNSPECIFIED_PLACEMENT
    if any(s[0] == click.rec_id and s[2] == placement for s in part.shown):
        return None  # shown there already: a re-render, or a producer's retry
    known = part.version_of(click.rec_id)
    if latest is not None and latest[0] == click.rec_id:
        version = str(latest[3])
    else:
        version = known[0] if known is not None else UNKNOWN_VERSION
    counts.add(version, placement, IMPRESSIONS)
    shown = (*part.shown, (click.rec_id, version, placement))[-SHOWN_KEPT:]
    return Attribution(shown, part.touches)


def _resolve(
    part: Attribution, rec_id: str, placement: str | None, latest: list[Any] | None
) -> tuple[str, str]:
    """The model version of `rec_id`, and the placement: the event's, else its impression's."""
    known = part.version_of(rec_id)
    if known is not None:
        return known[0], placement or known[1]
    version = str(latest[3]) if latest is not None and latest[0] == rec_id else UNKNOWN_VERSION
    return version, placement or UNSPECIFIED_PLACEMENT


def _touch(
    part: Attribution, item_id: str, ts: int, version: str, placement: str, window_ms: int
) -> Attribution:
    """The touch on `item_id` at `ts` becomes its last one unless a later one is kept already (a
    click that arrives out of event-time order). Touches out of every window are dropped."""
    kept = [t for t in part.touches if t[0] != item_id and t[1] + window_ms >= ts]
    previous = next((t for t in part.touches if t[0] == item_id), None)
    kept.append(previous if previous is not None and previous[1] > ts else (item_id, ts, version, placement))
    kept.sort(key=lambda t: (t[1], t[0]))
    return Attribution(part.shown, tuple(kept[-TOUCHES_KEPT:]))


def _order(
    part: Attribution, order: Order, latest: list[Any] | None, window_ms: int, counts: AttributionCounts
) -> None:
    if order.status != "placed":
        return  # cancellations and returns are not subtracted: the counts are of orders placed
    revenue: dict[tuple[str, str], int] = {}
    if order.rec_id is not None:
        whole = _resolve(part, order.rec_id, order.placement, latest)
        revenue[whole] = sum(_cents(line.price) * line.quantity for line in order.items)
    else:
        for line in order.items:
            touch = part.last_touch(line.item_id, order.ts, window_ms)
            if touch is not None:
                revenue[touch] = revenue.get(touch, 0) + _cents(line.price) * line.quantity
    for (version, placement), cents in sorted(revenue.items()):
        counts.add(version, placement, ORDERS)
        counts.add(version, placement, REVENUE_CENTS, cents)


def _cents(price: float | None) -> int:
    return 0 if price is None else round(price * 100)


# -- the summary: `GET /stats/recommendations` and `streams attribution` ---------------------------


def summarize(parts: Iterable[Mapping[str, Mapping[str, list[int]]]], window_ms: int) -> dict[str, Any]:
    """Partitions' counts (their wire form) added up, one row per model version and placement,
    sorted, with the rates a web team reads them by."""
    total: dict[tuple[str, str], list[int]] = {}
    for part in parts:
        for version, places in part.items():
            for placement, row in places.items():
                into = total.setdefault((version, placement), [0] * len(MEASURES))
                for i, value in enumerate(row):
                    into[i] += value
    rows = [_row(values) | {"model_version": v, "placement": p} for (v, p), values in sorted(total.items())]
    overall = [sum(values[i] for values in total.values()) for i in range(len(MEASURES))]
    return {"attribution_window_ms": window_ms, "totals": _row(overall), "rows": rows}


def shop_summary(
    by_partition: Mapping[int, Mapping[str, Mapping[str, list[int]]]], partitions: int, window_ms: int
) -> dict[str, Any]:
    """`summarize` over the partitions at hand, saying which of the shop's `partitions` it covers."""
    missing = sorted(set(range(partitions)) - set(by_partition))
    return {
        **summarize((by_partition[p] for p in sorted(by_partition)), window_ms),
        "partitions": sorted(by_partition),
        "missing_partitions": missing,
        "complete": not missing,
    }


def _row(values: list[int]) -> dict[str, Any]:
    impressions, clicks, carts, orders, cents = values
    return {
        "impressions": impressions,
        "clicks": clicks,
        "add_to_carts": carts,
        "orders": orders,
        "revenue": cents / 100,
        "click_through_rate": round(clicks / impressions, 6) if impressions else None,
        "orders_per_click": round(orders / clicks, 6) if clicks else None,
    }
