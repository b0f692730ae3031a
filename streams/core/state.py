"""Per-user state and its pure transition.

Clicks and orders arrive on two topics, so a worker may see a user's order before a click that
happened earlier (the topics are consumed independently). The transition is written so that the
final state depends only on the per-topic order of events, never on how the two topics interleave:
recent events are kept sorted by event time, an order only takes cart quantity added at or before
its time, and an add-to-cart older than a purchase of the same item is already consumed by it.
That is what lets the live worker and an in-process replay of the same log agree exactly.

Everything here is bounded whatever the input: the recent-event window, the cart, purchases and
the quantity chunks of a cart line all have caps (`StateLimits`).
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field, replace
from operator import attrgetter
from typing import Any, NamedTuple

from streams.core import profile as profiles
from streams.core.attribution import Attribution, is_impression
from streams.core.catalog import Catalog
from streams.core.events import SOURCE_RANK, Click, Order, Position, UserEvent
from streams.core.profile import Profile

SESSION_GAP_MS = 30 * 60 * 1000
_new_object = object.__new__  # an instance with its slots unset (`UserState.copy` fills them)
_event_id = attrgetter("event_id")


@dataclass(frozen=True, slots=True)
class StateLimits:
    recent_events: int = 50
    purchases: int = 50
    cart_lines: int = 100
    chunks_per_line: int = 8
    interest_categories: int = 8


class RecentEvent(NamedTuple):
    """One event of `UserState.recent`. A tuple: entries are built, compared and sorted in C, and a
    state read from the store builds up to `StateLimits.recent_events` of them."""

    # Field order is the sort order: event time, then topic, then arrival order within the topic.
    ts: int
    source_rank: int
    seq: int
    event_id: str
    kind: str
    item_id: str | None = None
    category: str | None = None

    def to_wire(self) -> list[Any]:
        return list(self)

    @classmethod
    def from_wire(cls, raw: list[Any]) -> RecentEvent:
        return cls(*raw)


@dataclass(slots=True)
class CartLine:
    # [added_ts, quantity] chunks, oldest first; an order removes the chunks added at or before it.
    chunks: list[list[int]]
    price: float | None = None

    @property
    def quantity(self) -> int:
        return sum(q for _, q in self.chunks)

    @property
    def updated_ts(self) -> int:
        return max(ts for ts, _ in self.chunks)


@dataclass(slots=True)
class Purchase:
    ts: int
    order_id: str
    status: str
    quantity: int
    price: float | None = None


@dataclass(slots=True)
class Session:
    id: str
    start_ts: int
    last_ts: int
    events: int
    derived: bool  # True when the frontend sent no session_id and we split on inactivity


@dataclass(frozen=True, slots=True)
class ModelMemory:
    """What a step-mode model carries for the shopper from one event to the next: its state after
    the event whose sort key is `through`, under the artifact `version`. Opaque bytes to the core; a
    state for another version, or one that does not end at the event before the next one, is not
    used (the model then reads the recent events whole)."""

    version: str
    through: tuple[int, int, int]  # (ts, source_rank, seq) of the last event it has read
    vector: bytes

    def to_wire(self) -> list[Any]:
        return [self.version, *self.through, self.vector]

    def describe(self) -> dict[str, Any]:
        return {"version": self.version, "through_ts": self.through[0], "bytes": len(self.vector)}

    @classmethod
    def from_wire(cls, raw: list[Any] | None) -> ModelMemory | None:
        if raw is None:
            return None
        version, ts, rank, seq, vector = raw
        return cls(version, (ts, rank, seq), vector)


def sort_key(event: RecentEvent) -> tuple[int, int, int]:
    """What orders `UserState.recent`, and names one of its events for a `ModelMemory`."""
    return (event.ts, event.source_rank, event.seq)


@dataclass(slots=True)
class UserState:
    user_id: str
    recent: list[RecentEvent] = field(default_factory=list)
    cart: dict[str, CartLine] = field(default_factory=dict)
    purchases: dict[str, Purchase] = field(default_factory=dict)
    counters: dict[str, int] = field(default_factory=dict)
    first_ts: int | None = None
    last_ts: int | None = None
    session: Session | None = None
    seq: dict[str, int] = field(default_factory=dict)
    offsets: dict[str, int] = field(default_factory=dict)
    # engagement: what promotion triggers need
    consent: bool | None = None
    timers: dict[str, int] = field(default_factory=dict)  # trigger kind -> due event time
    fired: list[list[Any]] = field(default_factory=list)  # [ts, kind, trigger_id], oldest first
    watch: dict[str, list[Any]] = field(default_factory=dict)  # item -> [price seen, in stock seen, ts]
    replayed: bool = False  # the last applied event came from a replay: its triggers must say so
    profile: Profile = field(default_factory=Profile)
    # audience segments: written after the model (like `fired`), not by the event itself
    intent: float | None = None  # purchase intent of the latest recommendation
    segments: list[str] = field(default_factory=list)  # ids of the segments the shopper is in, sorted
    # the latest recommendation, compact (streams.core.processor.recommendation_value reads it)
    recommendation: list[Any] | None = None
    model: ModelMemory | None = None  # written after the model, like `recommendation`
    attribution: Attribution | None = None  # recommendations shown and clicked (core.attribution)

    def copy(self) -> UserState:
        """A state the transition may change without touching this one. Runs for every event, so
        only the containers are copied: cart lines, purchases and the session are replaced when they
        change, never changed in place (`_own_line`, `_apply_order`, `_advance_session`), and so are
        the entries of `fired`, `watch` and `segments`, the recommendation and the model memory.
        Fills the slots directly, which costs about a quarter less than the dataclass constructor;
        tests/core/test_state.py checks that every field is carried over."""
        new = _new_object(UserState)
        new.user_id = self.user_id
        new.recent = self.recent.copy()
        new.cart = self.cart.copy()
        new.purchases = self.purchases.copy()
        new.counters = self.counters.copy()
        new.first_ts = self.first_ts
        new.last_ts = self.last_ts
        new.session = self.session
        new.seq = self.seq.copy()
        new.offsets = self.offsets.copy()
        new.consent = self.consent
        new.timers = self.timers.copy()
        new.fired = self.fired.copy()
        new.watch = self.watch.copy()
        new.replayed = self.replayed
        new.profile = self.profile.copy()
        new.intent = self.intent
        new.segments = self.segments
        new.recommendation = self.recommendation
        new.model = self.model
        new.attribution = self.attribution
        return new

    def cart_value(self, catalog: Catalog | None = None) -> float:
        """Price x quantity over the cart: the price the click carried, else the catalog's."""
        if not self.cart:
            return 0.0  # most shoppers' (read after every event)
        total = 0.0
        for item, line in self.cart.items():
            price = line.price
            if price is None and catalog is not None and (known := catalog.get(item)) is not None:
                price = known.price
            total += (price or 0.0) * line.quantity
        return round(total, 2)

    def cart_quantities(self) -> dict[str, int]:
        return {item: line.quantity for item, line in sorted(self.cart.items())}

    # -- wire form: compact lists inside a msgpack map, ~40 bytes per recent event ------------------

    def to_wire(self) -> dict[str, Any]:
        wire = {
            "v": 1,
            "u": self.user_id,
            "r": [e.to_wire() for e in self.recent],
            "c": {k: [line.chunks, line.price] for k, line in self.cart.items()},
            "p": {k: [p.ts, p.order_id, p.status, p.quantity, p.price] for k, p in self.purchases.items()},
            "n": self.counters,
            "t": [self.first_ts, self.last_ts],
            "s": None if self.session is None else list(_session_fields(self.session).values()),
            "q": self.seq,
            "o": self.offsets,
            "e": [self.consent, self.timers, self.fired, self.watch, self.replayed],
            "f": self.profile.to_wire(),
            "g": [self.intent, self.segments],
            "l": self.recommendation,
            "m": None if self.model is None else self.model.to_wire(),
        }
        if self.attribution is not None:  # most shoppers never click a recommendation: no key
            wire["a"] = self.attribution.to_wire()
        return wire

    @classmethod
    def from_wire(cls, raw: dict[str, Any]) -> UserState:
        session = raw["s"]
        consent, timers, fired, watch, replayed = raw.get("e") or (None, {}, [], {}, False)
        intent, segments = raw.get("g") or (None, [])  # states written before profiles have neither
        return cls(
            user_id=raw["u"],
            recent=[RecentEvent.from_wire(e) for e in raw["r"]],
            cart={k: CartLine(chunks, price) for k, (chunks, price) in raw["c"].items()},
            purchases={k: Purchase(*p) for k, p in raw["p"].items()},
            counters=raw["n"],
            first_ts=raw["t"][0],
            last_ts=raw["t"][1],
            session=None if session is None else Session(*session),
            seq=raw["q"],
            offsets=raw["o"],
            consent=consent,
            timers=timers,
            fired=fired,
            watch=watch,
            replayed=replayed,
            profile=Profile.from_wire(raw.get("f")),
            intent=intent,
            segments=segments,
            recommendation=raw.get("l"),  # states written before it have none
            model=ModelMemory.from_wire(raw.get("m")),
            attribution=Attribution.from_wire(raw.get("a")),
        )

    def to_dict(self) -> dict[str, Any]:
        """A readable form for `streams state` and the HTTP API."""
        return {
            "user_id": self.user_id,
            "first_ts": self.first_ts,
            "last_ts": self.last_ts,
            "session": None if self.session is None else _session_fields(self.session),
            "counters": dict(sorted(self.counters.items())),
            "cart": {
                item: {"quantity": line.quantity, "price": line.price, "updated_ts": line.updated_ts}
                for item, line in sorted(self.cart.items())
            },
            "purchases": {
                item: {"ts": p.ts, "order_id": p.order_id, "status": p.status, "quantity": p.quantity}
                for item, p in sorted(self.purchases.items())
            },
            "recent": [
                {
                    "ts": e.ts,
                    "event_id": e.event_id,
                    "kind": e.kind,
                    "item_id": e.item_id,
                    "category": e.category,
                }
                for e in self.recent
            ],
            "applied": dict(sorted(self.seq.items())),
            "offsets": dict(sorted(self.offsets.items())),
            "consent": self.consent,
            "timers": dict(sorted(self.timers.items())),
            "triggers": [{"ts": ts, "kind": kind, "trigger_id": tid} for ts, kind, tid in self.fired],
            "watch": {
                item: {"price": p, "in_stock": s, "ts": ts} for item, (p, s, ts) in sorted(self.watch.items())
            },
            "profile": {
                "interest_ts": self.profile.interest_ts,
                "interest": dict(sorted(self.profile.interest.items())),
                "price_cents": self.profile.price_cents,
                "orders": self.profile.orders,
                "spend_cents": self.profile.spend_cents,
                "last_order_ts": self.profile.last_order_ts,
            },
            "intent": self.intent,
            "segments": list(self.segments),
            "recommendation": None if self.recommendation is None else self.recommendation[0],  # rec_id
            "model_state": None if self.model is None else self.model.describe(),
            "attribution": None
            if self.attribution is None
            else {
                "shown": [
                    {"rec_id": r, "model_version": v, "placement": p} for r, v, p in self.attribution.shown
                ],
                "touches": [
                    {"item_id": i, "ts": ts, "model_version": v, "placement": p}
                    for i, ts, v, p in self.attribution.touches
                ],
            },
        }


def _session_fields(session: Session) -> dict[str, Any]:
    return {
        "id": session.id,
        "start_ts": session.start_ts,
        "last_ts": session.last_ts,
        "events": session.events,
        "derived": session.derived,
    }


# -- transition -----------------------------------------------------------------------------------


def is_duplicate(state: UserState, event: UserEvent, position: Position | None) -> bool:
    """True if this event was already applied: at or below the partition's offset watermark, or an
    event id still in the recent window (a producer retry that got a new offset)."""
    if position is not None:
        applied = state.offsets.get(position.slot)
        if applied is not None and position.offset <= applied:
            return True
    return event.event_id in map(_event_id, state.recent)  # per event: compared in C, no frames


def apply_event(
    state: UserState | None,
    event: UserEvent,
    position: Position | None = None,
    limits: StateLimits = StateLimits(),
    catalog: Catalog | None = None,
) -> UserState:
    """The new state after `event`. Pure: `state` is not modified. Call `is_duplicate` first.
    `catalog` fills in a click's category and price when the event carries none (profile)."""
    new = UserState(user_id=event.user_id) if state is None else state.copy()
    source, ts = event.source, event.ts
    seq = new.seq[source] = new.seq.get(source, 0) + 1
    if position is not None:
        new.offsets[position.slot] = position.offset
    if is_impression(event):
        return new  # what was shown, not what the shopper did: only counted (core.attribution)
    if new.first_ts is None or ts < new.first_ts:
        new.first_ts = ts
    if new.last_ts is None or ts > new.last_ts:
        new.last_ts = ts
    if isinstance(event, Click):
        kind, item = event.type, event.item_id
        _apply_click(new, event, limits)
        known = catalog.get(item) if catalog is not None and item is not None else None
        category = event.category or (known.category if known is not None else None)
        price = event.price if event.price is not None else (known.price if known is not None else None)
        profiles.on_click(new.profile, event, category, price, limits.interest_categories)
        entry = RecentEvent(ts, SOURCE_RANK[source], seq, event.event_id, kind, item, event.category)
    else:
        kind = f"order_{event.status}"
        _apply_order(new, event, limits)
        profiles.on_order(new.profile, event)
        first_item = event.items[0].item_id if event.items else None
        entry = RecentEvent(ts, SOURCE_RANK[source], seq, event.event_id, kind, first_item)
    _remember(new, entry, limits)
    new.counters[kind] = new.counters.get(kind, 0) + 1
    return new


def _remember(state: UserState, entry: RecentEvent, limits: StateLimits) -> None:
    recent = state.recent
    # The usual case is the newest event, which goes last (where insort puts it): a later event
    # time alone shows it, without comparing whole entries.
    if not recent or entry.ts > recent[-1].ts or not entry < recent[-1]:
        recent.append(entry)
    else:
        bisect.insort(recent, entry)
    if len(recent) > limits.recent_events:
        del recent[: len(recent) - limits.recent_events]


def _apply_click(state: UserState, click: Click, limits: StateLimits) -> None:
    _advance_session(state, click)
    if click.marketing_consent is not None:
        state.consent = click.marketing_consent
    if click.item_id is None:
        return
    if click.type == "add_to_cart":
        bought = state.purchases.get(click.item_id)
        if bought is not None and bought.ts >= click.ts:
            return  # a purchase at or after this add already took it out of the cart
        line = _own_line(state, click.item_id)
        if line is None:
            if len(state.cart) >= limits.cart_lines:
                oldest = min(state.cart, key=lambda k: (state.cart[k].updated_ts, k))
                del state.cart[oldest]
            line = state.cart[click.item_id] = CartLine([])
        line.chunks.append([click.ts, click.quantity or 1])
        if click.price is not None:
            line.price = click.price
        if len(line.chunks) > limits.chunks_per_line:
            (t0, q0), (t1, q1) = line.chunks[0], line.chunks[1]
            line.chunks[:2] = [[max(t0, t1), q0 + q1]]
    elif click.type == "remove_from_cart":
        line = _own_line(state, click.item_id)
        if line is None:
            return
        remaining = click.quantity if click.quantity is not None else line.quantity
        # Newest first: the newest chunks are the ones no earlier-placed order can have consumed.
        while remaining > 0 and line.chunks:
            taken = min(remaining, line.chunks[-1][1])
            line.chunks[-1][1] -= taken
            remaining -= taken
            if line.chunks[-1][1] == 0:
                line.chunks.pop()
        if not line.chunks:
            del state.cart[click.item_id]


def _advance_session(state: UserState, click: Click) -> None:
    current = state.session
    if click.session_id is not None:
        if current is not None and current.id == click.session_id:
            state.session = _extended(current, click.ts)
        else:
            state.session = Session(click.session_id, click.ts, click.ts, 1, derived=False)
        return
    if current is not None and current.derived and click.ts - current.last_ts <= SESSION_GAP_MS:
        state.session = _extended(current, click.ts)
    else:
        state.session = Session(f"{click.user_id}:{click.ts}", click.ts, click.ts, 1, derived=True)


def _extended(session: Session, ts: int) -> Session:
    """A new record: the old one may be shared with the state before (UserState.copy)."""
    start = ts if ts < session.start_ts else session.start_ts  # min and max, without the calls
    last = ts if ts > session.last_ts else session.last_ts
    return Session(session.id, start, last, session.events + 1, session.derived)


def _apply_order(state: UserState, order: Order, limits: StateLimits) -> None:
    if order.status == "placed":
        for line in order.items:
            previous = state.purchases.get(line.item_id)
            if previous is None or previous.ts <= order.ts:
                state.purchases[line.item_id] = Purchase(
                    order.ts, order.order_id, "placed", line.quantity, line.price
                )
            _take_from_cart(state, line.item_id, order.ts)
        if len(state.purchases) > limits.purchases:
            keep = sorted(state.purchases.items(), key=lambda kv: (kv[1].ts, kv[0]))[-limits.purchases :]
            state.purchases = dict(keep)
        return
    for line in order.items:
        purchase = state.purchases.get(line.item_id)
        if purchase is not None and purchase.order_id == order.order_id:
            # A new record: the old one may be shared with the state before (UserState.copy).
            state.purchases[line.item_id] = replace(purchase, status=order.status)


def _take_from_cart(state: UserState, item_id: str, ts: int) -> None:
    line = state.cart.get(item_id)
    if line is None:
        return
    chunks = [chunk for chunk in line.chunks if chunk[0] > ts]
    if chunks:
        state.cart[item_id] = CartLine(chunks, line.price)  # a new line: the old one may be shared
    else:
        del state.cart[item_id]


def _own_line(state: UserState, item_id: str) -> CartLine | None:
    """The cart line of `item_id`, copied into `state` first: `UserState.copy` shares the lines."""
    line = state.cart.get(item_id)
    if line is None:
        return None
    line = state.cart[item_id] = CartLine([list(chunk) for chunk in line.chunks], line.price)
    return line
