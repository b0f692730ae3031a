"""The core's entry point: validated events + user states in, new states and output events out.

Adapters (the Faust worker, the offline replay) call only this. It is synchronous and
deterministic: the time it uses is event time, and a batch gives exactly what the same events one
by one would give, whatever the batch size. That is what makes a replay reproduce production.

A batch runs in two phases. Phase 1 applies each event to its user's state (facts, timers,
trending, watermark) and collects one model request per event. One model call serves the batch.
Phase 2 walks the events again in order: the recommendation, the high-intent rule, and the timers
the event's watermark makes due, each judged on the state *as of that event* (snapshots from
phase 1), with triggers recorded on the user's latest state (the ledger).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any, NamedTuple

from streams.core import attribution, segments, triggers
from streams.core.attribution import AttributionCounts, is_impression
from streams.core.catalog import Catalog, CatalogItem
from streams.core.config import RulesConfig
from streams.core.copurchase import WINDOW_MS as CO_PURCHASE_WINDOW_MS
from streams.core.copurchase import CoPurchases
from streams.core.demand import (
    COUNTED_CLICKS,
    DEMAND,
    DemandWindows,
    click_increments,
    order_increments,
)
from streams.core.demand import topic_key as demand_key
from streams.core.events import SCHEMA_VERSION, Click, Order, Position, UserEvent
from streams.core.ids import stable_id
from streams.core.recommend import BatchHistories, Carried, Prediction, Recommender, RecRequest
from streams.core.rules import RankedItems, exclusions, finalize_all
from streams.core.segments import AUDIENCE_SEGMENTS, SegmentRules
from streams.core.state import ModelMemory, StateLimits, UserState, apply_event, is_duplicate, sort_key
from streams.core.timers import Timers
from streams.core.trending import Trending

RECOMMENDATIONS = "recommendations"
PROMOTION_TRIGGERS = "promotion-triggers"
EXTRA_CANDIDATES = 10  # asked beyond top_n so out-of-stock filtering rarely leaves a short list

StateLoader = Callable[[str], UserState | None]


@dataclass(frozen=True, slots=True)
class Transition:
    state: UserState
    applied: bool  # False: a re-delivered event; `state` is the unchanged input state
    outputs: list[Output] = field(default_factory=list)


# Output and Incoming are made once per event or more: a NamedTuple is built in C, where a frozen
# dataclass sets each field through object.__setattr__ (about three times the cost).


class Output(NamedTuple):
    topic: str  # logical topic name
    key: str
    value: dict[str, Any]
    partition: int | None = None  # None: by key; demand goes to its input partition's number


class Incoming(NamedTuple):
    event: UserEvent
    partition: int
    position: Position | None = None
    replay: bool = False


@dataclass(slots=True)
class EventResult:
    applied: bool
    outputs: list[Output] = field(default_factory=list)


@dataclass(slots=True)
class PartitionState:
    """What a partition knows beyond its users: trending items, items bought together, demand
    windows, its watermark, the attribution counts of its shoppers."""

    trending: Trending
    watermark: int = -1
    offsets: dict[str, int] = field(default_factory=dict)
    demand: DemandWindows | None = None  # None: demand signals are off
    bought: CoPurchases = field(default_factory=CoPurchases)
    attribution: AttributionCounts = field(default_factory=AttributionCounts)

    def to_wire(self) -> dict[str, Any]:
        wire = {"tr": self.trending.to_wire(), "wm": self.watermark, "o": self.offsets}
        wire["bt"] = self.bought.to_wire()
        if self.demand is not None:
            wire["dm"] = self.demand.to_wire()
        if self.attribution:
            wire["at"] = self.attribution.to_wire()
        return wire

    @classmethod
    def from_wire(cls, raw: dict[str, Any]) -> PartitionState:
        demand = DemandWindows.from_wire(raw["dm"]) if "dm" in raw else None
        bought = CoPurchases.from_wire(raw.get("bt"))
        counts = AttributionCounts.from_wire(raw.get("at"))
        return cls(Trending.from_wire(raw["tr"]), raw["wm"], raw["o"], demand, bought, counts)


@dataclass(slots=True)
class BatchResult:
    results: list[EventResult]
    states: dict[str, UserState]  # every state to store (changed, or re-delivered: rewrite repairs)
    partitions: set[int] = field(default_factory=set)  # partitions whose PartitionState changed


@dataclass(slots=True)
class _Applied:
    index: int
    incoming: Incoming
    facts: UserState
    request: int | None  # index into the batch's model requests; None: trending fallback
    fallback: list[tuple[str, float]] | None
    recommend: bool = True  # False: an impression, which only counts (core.attribution)


class Processor:
    def __init__(
        self,
        recommender: Recommender | None = None,
        config: RulesConfig | None = None,
        limits: StateLimits | None = None,
        catalog: Catalog | None = None,
    ) -> None:
        self.recommender = recommender
        self.config = config or RulesConfig()
        self.limits = limits or StateLimits()
        self.catalog: Catalog = catalog if catalog is not None else {}
        self.segments = SegmentRules(self.config, self.catalog)
        self.window_specs = self.config.window_specs()
        self.on_suppressed: triggers.Refused | None = None  # an adapter counts refused triggers

    def new_partition_state(self) -> PartitionState:
        return PartitionState(Trending(self.config.trending_half_life_ms), demand=self._new_demand())

    def _new_demand(self) -> DemandWindows | None:
        return DemandWindows(self.window_specs) if self.window_specs else None

    # -- state only -----------------------------------------------------------------------------------

    def process(
        self, state: UserState | None, event: UserEvent, position: Position | None = None
    ) -> Transition:
        """The state transition alone (no model, rules or timers)."""
        if state is not None and is_duplicate(state, event, position):
            return Transition(state, applied=False)
        return Transition(apply_event(state, event, position, self.limits, self.catalog), applied=True)

    # -- the full pipeline ----------------------------------------------------------------------------

    def process_batch(
        self,
        batch: Sequence[Incoming],
        load: StateLoader,
        partitions: dict[int, PartitionState],
        timers: Timers,
    ) -> BatchResult:
        timers.compact()
        ledger: dict[str, UserState | None] = {}  # latest state per user touched by this batch
        snapshots: dict[str, list[tuple[int, UserState]]] = {}
        before: dict[str, UserState | None] = {}
        results = [EventResult(applied=False) for _ in batch]
        applied: list[_Applied] = []
        requests: list[RecRequest] = []
        watermarks: list[int] = []
        touched: set[int] = set()
        chains: dict[str, tuple[int, tuple[int, int, int]]] = {}  # user -> (request, its last event)
        histories = BatchHistories()

        def latest(user: str) -> UserState | None:
            if user not in ledger:
                ledger[user] = before[user] = load(user)
            return ledger[user]

        for index, incoming in enumerate(batch):
            event = incoming.event
            part = partitions.get(incoming.partition)
            if part is None:
                part = partitions[incoming.partition] = self.new_partition_state()
            counted = self._advance_partition(part, incoming)
            watermarks.append(part.watermark)
            state = latest(event.user_id)
            if counted:
                touched.add(incoming.partition)
                _count_co_purchases(part, event, state)
                results[index].outputs += self._demand(part, incoming, state)
            if state is not None and is_duplicate(state, event, incoming.position):
                continue
            new = apply_event(state, event, incoming.position, self.limits, self.catalog)
            if is_impression(event):
                ledger[event.user_id] = new
                snapshots.setdefault(event.user_id, []).append((index, new))
                results[index].applied = True
                applied.append(_Applied(index, incoming, new, None, None, recommend=False))
                continue
            new.replayed = incoming.replay
            self._watch(new, event)
            triggers.schedule(new, event, self.config)
            self._schedule_segments(new, after=new.last_ts or event.ts)
            for kind, due in new.timers.items():
                if state is None or state.timers.get(kind) != due:
                    timers.add(incoming.partition, due, new.user_id, kind)
            ledger[event.user_id] = new
            snapshots.setdefault(event.user_id, []).append((index, new))
            results[index].applied = True
            applied.append(self._request(index, incoming, state, new, part, requests, chains, histories))

        predictions = self.recommender.recommend_batch(requests) if requests and self.recommender else []
        version = self.recommender.version if self.recommender is not None else ""
        ranked = iter(self._rank(applied, predictions))
        pending = iter(applied)
        step = next(pending, None)
        lateness = self.config.allowed_lateness_ms
        for index, incoming in enumerate(batch):
            outputs = results[index].outputs
            if step is not None and step.index == index:
                if self._attribute(step, ledger, partitions):
                    touched.add(incoming.partition)
                if step.recommend:
                    intent = self._immediate(step, predictions, next(ranked, None), ledger, version, outputs)
                    self._segments_after(step, intent, ledger, outputs)
                step = next(pending, None)
            if due := timers.pop_due(incoming.partition, watermarks[index] - lateness):
                as_of = partial(_as_of, snapshots, before, index=index)
                outputs += self._fire(incoming.partition, due, timers, latest, as_of)
        states = {user: state for user, state in ledger.items() if state is not None}
        return BatchResult(results, states, touched)

    def advance(
        self, partition: int, now: int, load: StateLoader, timers: Timers
    ) -> tuple[list[Output], dict[str, UserState]]:
        """Fire the partition's timers due at `now` (a live worker's wall-clock tick)."""
        timers.compact()
        ledger: dict[str, UserState | None] = {}

        def latest(user: str) -> UserState | None:
            if user not in ledger:
                ledger[user] = load(user)
            return ledger[user]

        due = timers.pop_due(partition, now - self.config.allowed_lateness_ms)
        outputs = self._fire(partition, due, timers, latest, latest)
        return outputs, {u: s for u, s in ledger.items() if s is not None}

    def on_catalog(
        self, item: CatalogItem, watchers: Iterable[str], load: StateLoader
    ) -> tuple[list[Output], dict[str, UserState]]:
        """Price-drop and back-in-stock triggers for the users watching `item`."""
        outputs: list[Output] = []
        states: dict[str, UserState] = {}
        for user in sorted(watchers):
            state = load(user)
            if state is None or item.item_id not in state.watch:
                continue
            new = state.copy()
            for candidate in triggers.catalog_candidates(new, item, self.config):
                if (
                    value := triggers.admit(
                        new, new, candidate, self.config, self.on_suppressed, self.catalog
                    )
                ) is not None:
                    outputs.append(Output(PROMOTION_TRIGGERS, user, value))
            states[user] = new
        return outputs, states

    # -- steps ----------------------------------------------------------------------------------------

    def _advance_partition(self, part: PartitionState, incoming: Incoming) -> bool:
        position = incoming.position
        if position is not None:
            if position.offset <= part.offsets.get(position.slot, -1):
                return False  # already counted before a crash
            part.offsets[position.slot] = position.offset
        event = incoming.event
        if isinstance(event, Click) and event.item_id is not None:
            part.trending.add(event.item_id, event.type, event.ts)
        part.watermark = max(part.watermark, event.ts)
        return True

    def _demand(self, part: PartitionState, incoming: Incoming, state: UserState | None) -> list[Output]:
        """Count the event in the partition's demand windows; emit the windows its time closes."""
        windows = part.demand
        if windows is None or windows.specs is not self.window_specs:
            if windows is not None and windows.specs == self.window_specs:
                # Restored from the changelog: the same windows, compared by identity from now on
                # (equal specs are compared field by field, at every event).
                windows.specs = self.window_specs
            else:  # turned on, or other windows configured: start afresh
                windows = part.demand = self._new_demand()
                if windows is None:
                    return []
        event = incoming.event
        increments: Mapping[str, Sequence[int]] = {}
        if isinstance(event, Click) and event.item_id is not None and event.type in COUNTED_CLICKS:
            category = event.category or getattr(self.catalog.get(event.item_id), "category", None)
            increments = click_increments(event.type, event.item_id, category)
        elif isinstance(event, Order) and event.status == "placed":
            lines = [(i.item_id, i.quantity, self._category_of(i.item_id, state)) for i in event.items]
            increments = order_increments(lines)
        if increments:
            windows.count(event.ts, increments)
        horizon = part.watermark - self.config.demand_lateness_ms
        closed = windows.close(horizon, incoming.partition)
        if not closed:
            return []  # most events close no window
        return [Output(DEMAND, demand_key(v), v, incoming.partition) for v in closed]

    def _category_of(self, item_id: str, state: UserState | None) -> str | None:
        """What the shopper saw the item as (the same in every replay), else what the catalog says."""
        for seen in reversed(state.recent if state is not None else ()):
            if seen.item_id == item_id and seen.category is not None:
                return seen.category
        return getattr(self.catalog.get(item_id), "category", None)

    def _watch(self, state: UserState, event: UserEvent) -> None:
        if not isinstance(event, Click) or event.item_id is None or event.type not in ("view", "add_to_cart"):
            return
        known = self.catalog.get(event.item_id)
        price = event.price if event.price is not None else getattr(known, "price", None)
        triggers.watch_item(state, event.item_id, price, getattr(known, "in_stock", None), event.ts)

    def _request(
        self,
        index: int,
        incoming: Incoming,
        prior: UserState | None,
        state: UserState,
        part: PartitionState,
        requests: list[RecRequest],
        chains: dict[str, tuple[int, tuple[int, int, int]]],
        histories: BatchHistories,
    ) -> _Applied:
        if self.recommender is None:
            return _Applied(index, incoming, state, None, None)
        excluded = exclusions(state, self.config)
        history = histories.of(state.user_id, prior.recent if prior is not None else None, state.recent)
        if not any(item is not None and self.recommender.knows(item) for item, _, _ in history):
            # Cold start: nothing the model knows yet. Trending as of this event (not the batch end).
            wanted = self.config.top_n + EXTRA_CANDIDATES
            return _Applied(index, incoming, state, None, part.trending.top(wanted, excluded))
        carried, after = _carried(incoming.event, prior, state, chains.get(state.user_id))
        requests.append(RecRequest(history, excluded, self.config.top_n + EXTRA_CANDIDATES, carried, after))
        chains[state.user_id] = (len(requests) - 1, sort_key(state.recent[-1]))
        return _Applied(index, incoming, state, len(requests) - 1, None)

    def _schedule_segments(self, state: UserState, after: int) -> None:
        due = self.segments.next_check(state, after)
        if due is None:
            state.timers.pop(segments.TIMER, None)
        else:
            state.timers[segments.TIMER] = due

    def _segments_after(
        self, step: _Applied, intent: float | None, ledger: dict[str, UserState | None], outputs: list[Output]
    ) -> None:
        """Segment changes an event causes, judged on the state as of that event (added to `outputs`)."""
        event, facts = step.incoming.event, step.facts
        owner = ledger[event.user_id]
        if owner is None:
            return
        now = max(event.ts, facts.last_ts or event.ts)
        for value in self.segments.update(facts, owner, intent, now, event.event_id, event.event_id):
            outputs.append(Output(AUDIENCE_SEGMENTS, event.user_id, value))

    def _attribute(
        self, step: _Applied, ledger: dict[str, UserState | None], partitions: dict[int, PartitionState]
    ) -> bool:
        """Count the event's part in attribution, against the shopper's latest recommendation as of
        the event before (this event's own is made after). True: the partition's counts changed."""
        event = step.incoming.event
        owner = ledger[event.user_id]
        if owner is None:
            return False
        counts = partitions[step.incoming.partition].attribution
        before = counts.changes
        owner.attribution = attribution.attribute(
            owner.attribution, event, owner.recommendation, self.config.attribution_window_ms, counts
        )
        return counts.changes != before

    def _rank(self, applied: list[_Applied], predictions: list[Prediction]) -> list[RankedItems]:
        """What each recommending event shows, the rules applied to the whole batch at once (each
        judged on the state as of its event)."""
        if self.recommender is None:
            return []
        jobs = [
            (predictions[step.request].items, step.facts, None)
            if step.request is not None
            else (step.fallback or [], step.facts, "trending")
            for step in applied
            if step.recommend
        ]
        return finalize_all(jobs, self.catalog, self.config)

    def _immediate(
        self,
        step: _Applied,
        predictions: list[Prediction],
        ranked: RankedItems | None,
        ledger: dict[str, UserState | None],
        version: str,
        outputs: list[Output],
    ) -> float | None:
        """The recommendation and the high-intent trigger an event causes (added to `outputs`), and
        the model's intent. `version`: the model's, read once per batch."""
        if self.recommender is None or ranked is None:  # no model: no ranking either (`_rank`)
            return None
        event, facts = step.incoming.event, step.facts
        prediction = predictions[step.request] if step.request is not None else None
        intent = round(float(prediction.purchase_intent), 6) if prediction is not None else 0.0
        compact = [
            stable_id("r", event.event_id, version),
            event.event_id,
            event.ts,
            version,
            intent,
            ranked.provenance,
            list(map(list, ranked.items)),  # [item, score] pairs
        ]
        outputs.append(Output(RECOMMENDATIONS, event.user_id, recommendation_value(event.user_id, compact)))
        top = [i for i, _ in ranked.items]
        candidate = triggers.high_intent_candidate(facts, event, intent, top, self.config)
        owner = ledger[event.user_id]
        if owner is not None:  # the batch's events come in order: the last one's stays
            owner.recommendation = compact
            if prediction is not None and (carried := prediction.state) is not None:
                owner.model = ModelMemory(carried[0], sort_key(facts.recent[-1]), carried[1])
        if candidate is not None and owner is not None:
            value = triggers.admit(facts, owner, candidate, self.config, self.on_suppressed, self.catalog)
            if value is not None:
                outputs.append(Output(PROMOTION_TRIGGERS, event.user_id, value))
        return intent

    def _fire(
        self,
        partition: int,
        entries: list[tuple[int, str, str]],
        timers: Timers,
        latest: Callable[[str], UserState | None],
        as_of: Callable[[str], UserState | None],
    ) -> list[Output]:
        """The triggers and segment checks of the timers `entries` (popped from `timers`, due)."""
        outputs: list[Output] = []
        later: list[tuple[int, str, str]] = []
        for due, user, kind in entries:
            owner = latest(user)
            facts = as_of(user)
            if owner is None or facts is None:
                continue
            if facts.timers.get(kind) != due:
                if owner.timers.get(kind) == due:
                    later.append((due, user, kind))  # set by a later event of this batch: not yet
                continue  # otherwise stale: moved or cleared since it was indexed
            if kind == segments.TIMER:
                outputs += self._segments_due(partition, user, due, facts, owner, timers)
                continue
            candidate = triggers.due_candidate(facts, kind, due, self.config)
            if owner.timers.get(kind) == due:
                del owner.timers[kind]  # after judging: `facts` may be this very object
            if candidate is not None and (
                value := triggers.admit(
                    facts, owner, candidate, self.config, self.on_suppressed, self.catalog
                )
            ):
                outputs.append(Output(PROMOTION_TRIGGERS, user, value))
        for due, user, kind in later:
            timers.add(partition, due, user, kind)
        return outputs

    def _segments_due(
        self, partition: int, user: str, due: int, facts: UserState, owner: UserState, timers: Timers
    ) -> list[Output]:
        """A lifecycle boundary passed: re-evaluate the segments at `due`, then wait for the next one."""
        if owner.timers.get(segments.TIMER) == due:
            self._schedule_segments(owner, after=due)
            if (following := owner.timers.get(segments.TIMER)) is not None:
                timers.add(partition, following, user, segments.TIMER)
        values = self.segments.update(facts, owner, None, due, f"{segments.TIMER}@{due}")
        return [Output(AUDIENCE_SEGMENTS, user, v) for v in values]


def _carried(
    event: UserEvent,
    prior: UserState | None,
    state: UserState,
    chain: tuple[int, tuple[int, int, int]] | None,
) -> tuple[Carried | None, int | None]:
    """What a step-mode model can start this event from: the state of the shopper's previous request
    in this batch, or the one the shopper's state holds, when it ends exactly at the event before
    this one and this one is the newest (an event that arrived out of order is read whole)."""
    recent = state.recent
    if len(recent) < 2 or recent[-1].event_id != event.event_id:
        return None, None
    previous = sort_key(recent[-2])
    if chain is not None and chain[1] == previous:
        return None, chain[0]
    memory = prior.model if prior is not None else None
    if memory is not None and memory.through == previous:
        return (memory.version, memory.vector), None
    return None, None


def _count_co_purchases(part: PartitionState, event: UserEvent, state: UserState | None) -> None:
    """A placed order's items, bought together with each other and with the shopper's earlier
    purchases of the window (the state before this order: the same in every replay)."""
    if not isinstance(event, Order) or event.status != "placed":
        return
    since = event.ts - CO_PURCHASE_WINDOW_MS
    earlier = [
        item
        for item, p in (state.purchases.items() if state is not None else ())
        if p.status != "cancelled" and p.order_id != event.order_id and since <= p.ts <= event.ts
    ]
    part.bought.add_order([line.item_id for line in event.items], earlier)


def recommendation_value(user_id: str, compact: list[Any]) -> dict[str, Any]:
    """A recommendation event (`schemas/recommendation.v1.json`) from its compact form, as the user
    state keeps the latest one. `latency_ms` is 0: the live path sets it on the message it sends."""
    rec_id, cause_event_id, ts, version, intent, provenance, items = compact
    return {
        "schema_version": SCHEMA_VERSION,
        "rec_id": rec_id,
        "user_id": user_id,
        "cause_event_id": cause_event_id,
        "items": [{"item_id": i, "score": s, "rank": r} for r, (i, s) in enumerate(items, 1)],
        "purchase_intent": intent,
        "model_version": version,
        "ts": ts,
        "latency_ms": 0.0,
        "provenance": provenance,
    }


def _as_of(
    snapshots: dict[str, list[tuple[int, UserState]]],
    before: dict[str, UserState | None],
    user: str,
    *,
    index: int,
) -> UserState | None:
    """The user's state right after event `index` of the batch."""
    state = before.get(user)
    for at, snapshot in snapshots.get(user, ()):
        if at > index:
            break
        state = snapshot
    return state
