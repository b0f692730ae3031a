from __future__ import annotations

import random

import msgpack

from streams.codec import encode_value
from streams.core.catalog import CatalogItem
from streams.core.config import MINUTE, RulesConfig
from streams.core.events import Click, Order, OrderLine, Position
from streams.core.processor import Incoming, Output, PartitionState, Processor, recommendation_value
from streams.core.state import UserState
from streams.core.timers import TimerIndex
from tests.core.fakes import CarryingFake, FakeRecommender, fold

T0 = 1_700_000_000_000


class Driver:
    """Drives a processor like an adapter would, without Kafka (cf. Kafka Streams' TopologyTestDriver)."""

    def __init__(self, processor: Processor, batch_size: int = 1) -> None:
        self.processor = processor
        self.batch_size = batch_size
        self.states: dict[str, UserState] = {}
        self.partitions: dict[int, PartitionState] = {}
        self.timers = TimerIndex()
        self.offsets: dict[int, int] = {}

    def run(self, events: list[Click | Order], partition_of=lambda user: 0) -> list[Output]:
        outputs: list[Output] = []
        incoming = []
        for event in events:
            p = partition_of(event.user_id)
            offset = self.offsets[p] = self.offsets.get(p, -1) + 1
            incoming.append(Incoming(event, p, Position(event.source, p, offset)))
        for start in range(0, len(incoming), self.batch_size):
            result = self.processor.process_batch(
                incoming[start : start + self.batch_size], self.states.get, self.partitions, self.timers
            )
            self.states.update(result.states)
            for r in result.results:
                outputs += r.outputs
        return outputs

    def tick(self, partition: int, now: int) -> list[Output]:
        outputs, states = self.processor.advance(partition, now, self.states.get, self.timers)
        self.states.update(states)
        return outputs


def click(n: int, user: str, ts: int, kind: str = "view", item: str | None = "sku-5", **kw: object) -> Click:
    return Click(event_id=f"e{n}", user_id=user, type=kind, ts=ts, item_id=item, **kw)  # type: ignore[arg-type]


def order(n: int, user: str, ts: int, *items: str) -> Order:
    lines = tuple(OrderLine(i, 1, 10.0) for i in items)
    return Order(event_id=f"o{n}", user_id=user, order_id=f"ord{n}", status="placed", items=lines, ts=ts)


def triggers_of(outputs: list[Output], kind: str | None = None) -> list[dict]:
    return [
        o.value
        for o in outputs
        if o.topic == "promotion-triggers" and (kind is None or o.value["kind"] == kind)
    ]


def recs_of(outputs: list[Output]) -> list[dict]:
    return [o.value for o in outputs if o.topic == "recommendations"]


def processor(**rules: object) -> Processor:
    config = RulesConfig(**{"enabled_triggers": ("cart_abandonment",), **rules})  # type: ignore[arg-type]
    return Processor(FakeRecommender(), config)


def test_one_recommendation_per_event_without_purchased_or_carted_items() -> None:
    driver = Driver(processor())
    out = driver.run(
        [
            click(1, "u", T0, item="sku-5"),
            click(2, "u", T0 + 1, "add_to_cart", item="sku-6"),
            order(3, "u", T0 + 2, "sku-4"),
            click(4, "u", T0 + 3, item="sku-5"),
        ]
    )
    recs = recs_of(out)
    assert [r["cause_event_id"] for r in recs] == ["e1", "e2", "o3", "e4"]
    last = [i["item_id"] for i in recs[-1]["items"]]
    assert len(last) == 10 and "sku-4" not in last and "sku-6" not in last and last[0] == "sku-5"
    assert [i["rank"] for i in recs[-1]["items"]] == list(range(1, 11))
    assert recs[-1]["provenance"]["removed"] == {}
    assert len({r["rec_id"] for r in recs}) == 4


def test_the_state_keeps_the_latest_recommendation_as_it_was_sent() -> None:
    driver = Driver(processor(), batch_size=3)
    recs = recs_of(driver.run([click(n, "u", T0 + n, item=f"sku-{n}") for n in range(1, 6)]))
    state = driver.states["u"]
    assert state.recommendation is not None
    assert recommendation_value("u", state.recommendation) == recs[-1]
    stored = UserState.from_wire(msgpack.unpackb(encode_value(state.to_wire()), raw=False))
    assert recommendation_value("u", stored.recommendation) == recs[-1]  # type: ignore[arg-type]
    assert state.to_dict()["recommendation"] == recs[-1]["rec_id"]


def test_out_of_stock_items_are_removed_with_provenance() -> None:
    catalog = {"sku-6": CatalogItem("sku-6", T0, in_stock=False)}
    p = Processor(FakeRecommender(), RulesConfig(enabled_triggers=()), catalog=catalog)
    rec = recs_of(Driver(p).run([click(1, "u", T0, item="sku-5")]))[0]
    assert "sku-6" not in [i["item_id"] for i in rec["items"]]
    assert rec["provenance"]["removed"] == {"out_of_stock": ["sku-6"]}


def test_cold_start_falls_back_to_trending() -> None:
    driver = Driver(processor())
    events = [click(i, f"w{i}", T0 + i, item="sku-7") for i in range(3)] + [
        click(9, "new", T0 + 10, item="zzz")
    ]
    rec = recs_of(driver.run(events))[-1]
    assert rec["provenance"]["fallback"] == "trending"
    assert rec["items"][0]["item_id"] == "sku-7"


def test_quiet_cart_gets_exactly_one_abandonment_trigger() -> None:
    driver = Driver(processor())
    out = driver.run([click(1, "u", T0, "add_to_cart", item="sku-3", quantity=2)])
    assert triggers_of(out) == []
    # Event time moves on through another shopper on the same partition.
    out = driver.run([click(2, "other", T0 + 30 * MINUTE - 1)])
    assert triggers_of(out) == []
    out = driver.run([click(3, "other", T0 + 30 * MINUTE), click(4, "other", T0 + 90 * MINUTE)])
    [trigger] = triggers_of(out, "cart_abandonment")
    assert trigger["user_id"] == "u" and trigger["items"] == [{"item_id": "sku-3", "quantity": 2}]
    assert trigger["ts"] == T0 + 30 * MINUTE and trigger["expires_at"] > trigger["ts"]
    assert trigger["replay"] is False
    assert triggers_of(driver.run([click(5, "other", T0 + 500 * MINUTE)])) == []


def test_an_order_before_the_timeout_cancels_the_cart_trigger() -> None:
    driver = Driver(processor())
    out = driver.run(
        [
            click(1, "u", T0, "add_to_cart", item="sku-3"),
            order(2, "u", T0 + 10 * MINUTE, "sku-3"),
            click(3, "other", T0 + 120 * MINUTE),
        ]
    )
    assert triggers_of(out) == []


def test_opted_out_shopper_gets_no_trigger() -> None:
    driver = Driver(processor())
    out = driver.run(
        [
            click(1, "u", T0, "add_to_cart", item="sku-3", marketing_consent=False),
            click(2, "other", T0 + 120 * MINUTE),
        ]
    )
    assert triggers_of(out) == []


def test_caps_hold_over_a_burst() -> None:
    config = {"enabled_triggers": ("high_intent", "cart_abandonment"), "high_intent_threshold": 0.3}
    driver = Driver(processor(**config))
    burst = [click(i, "u", T0 + i * 1000, "add_to_cart", item=f"sku-{i}") for i in range(1, 30)]
    burst.append(click(99, "other", T0 + 200 * MINUTE))
    out = driver.run(burst)
    assert len(triggers_of(out, "high_intent")) == 1  # cap_per_kind = 1 per day
    assert len(triggers_of(out, "cart_abandonment")) == 1
    tight = Driver(processor(cap_overall=1, **config))
    assert len(triggers_of(tight.run(burst))) == 1


def test_wall_clock_tick_fires_a_quiet_users_timer() -> None:
    driver = Driver(processor())
    driver.run([click(1, "u", T0, "add_to_cart", item="sku-3")])
    assert triggers_of(driver.tick(0, T0 + 29 * MINUTE)) == []
    assert len(triggers_of(driver.tick(0, T0 + 31 * MINUTE), "cart_abandonment")) == 1


def test_price_drop_and_back_in_stock_for_watchers() -> None:
    catalog = {"sku-3": CatalogItem("sku-3", T0, price=100.0, in_stock=False)}
    p = Processor(FakeRecommender(), RulesConfig(), catalog=catalog)
    driver = Driver(p)
    driver.run([click(1, "u", T0, item="sku-3")])
    out, states = p.on_catalog(
        CatalogItem("sku-3", T0 + 5, price=80.0, in_stock=True), ["u", "x"], driver.states.get
    )
    assert sorted(t.value["kind"] for t in out) == ["back_in_stock", "price_drop"]
    driver.states.update(states)
    again, _ = p.on_catalog(CatalogItem("sku-3", T0 + 6, price=79.0, in_stock=True), ["u"], driver.states.get)
    assert again == []  # 79 is not 5% below the 80 already seen


def _random_traffic(seed: int) -> list[Click | Order]:
    rng = random.Random(seed)
    events: list[Click | Order] = []
    ts = T0
    for n in range(600):
        ts += rng.choice([1000, 60_000, 20 * MINUTE, 45 * MINUTE])
        user = f"u{rng.randrange(12)}"
        item = f"sku-{rng.randrange(40)}"
        r = rng.random()
        if r < 0.6:
            events.append(click(n, user, ts, item=item))
        elif r < 0.85:
            events.append(click(n, user, ts, "add_to_cart", item=item, marketing_consent=rng.random() > 0.1))
        else:
            events.append(order(n, user, ts, item))
    return events


def test_batches_of_any_size_give_exactly_what_one_by_one_gives() -> None:
    rules = {
        "enabled_triggers": ("cart_abandonment", "browse_abandonment", "high_intent", "win_back"),
        "high_intent_threshold": 0.4,
        "browse_item_views": 2,
    }
    events = _random_traffic(3)

    def partition_of(user: str) -> int:
        return int(user[1:]) % 3

    baseline = Driver(processor(**rules), batch_size=1)
    expected = baseline.run(events, partition_of)
    assert triggers_of(expected, "cart_abandonment") and triggers_of(expected, "high_intent")
    assert any(o.topic == "demand" for o in expected)  # demand windows close at the same events too
    for size in (2, 7, 64, 600):
        driver = Driver(processor(**rules), batch_size=size)
        assert driver.run(events, partition_of) == expected, size
        assert driver.states == baseline.states
    batched = Driver(processor(**rules), batch_size=64)
    batched.run(events, partition_of)
    assert max(batched.processor.recommender.calls) > 1  # type: ignore[union-attr]


def test_redelivered_batch_emits_nothing_new() -> None:
    driver = Driver(processor())
    events = [click(1, "u", T0, "add_to_cart", item="sku-3"), click(2, "other", T0 + 60 * MINUTE)]
    first = driver.run(events)
    assert triggers_of(first)
    driver.offsets.clear()  # the same offsets again, as after a crash
    again = driver.run(events)
    assert recs_of(again) == [] and triggers_of(again) == []


def test_a_step_model_gets_the_state_of_the_event_before_whatever_the_batching() -> None:
    """The state each shopper ends with is the model's fold over exactly its recent events, whether
    the events came one per batch or many; and after each shopper's first request, every event
    starts from a carried state instead of re-reading the history."""
    events = [e for e in _random_traffic(5) if e.ts < T0 + 400 * 20 * MINUTE]
    runs = {}
    for size in (1, 7, 600):
        model = CarryingFake()
        driver = Driver(Processor(model, RulesConfig()), batch_size=size)
        outputs = driver.run(events)
        for user, state in driver.states.items():
            history = tuple((e.item_id, e.kind, e.ts) for e in state.recent)
            assert len(state.recent) < 50  # else the fold over recent would not be the whole past
            assert state.model is not None and state.model.vector == fold(b"", history), (size, user)
            newest = state.recent[-1]
            assert state.model.through == (newest.ts, newest.source_rank, newest.seq)
        assert model.whole == len(driver.states) and model.carried > 10 * model.whole, size
        runs[size] = (outputs, driver.states)
    assert runs[1] == runs[7] == runs[600]


def test_an_event_out_of_order_or_another_model_version_reads_the_history_whole() -> None:
    model = CarryingFake()
    driver = Driver(Processor(model, RulesConfig()))
    driver.run([click(1, "u", T0), click(2, "u", T0 + 1000)])
    assert (model.whole, model.carried) == (1, 1)
    driver.run([click(3, "u", T0 + 500)])  # older than the newest event: inserted, not appended
    assert (model.whole, model.carried) == (2, 1)
    driver.run([click(4, "u", T0 + 2000)])
    assert (model.whole, model.carried) == (2, 2)
    model.version = "carrying-2"  # a swapped model cannot use the old one's state
    driver.run([click(5, "u", T0 + 3000)])
    assert (model.whole, model.carried) == (3, 2)
    state = driver.states["u"]
    assert state.model is not None and state.model.version == "carrying-2"
    assert UserState.from_wire(msgpack.unpackb(msgpack.packb(state.to_wire()))) == state
