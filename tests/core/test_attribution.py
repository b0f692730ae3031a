from __future__ import annotations

import random

import msgpack

from streams.codec import encode_value
from streams.core.attribution import (
    MAX_PLACEMENTS,
    OTHER,
    TOUCHES_KEPT,
    UNKNOWN_VERSION,
    UNSPECIFIED_PLACEMENT,
    AttributionCounts,
    summarize,
)
from streams.core.config import HOUR, MINUTE, RulesConfig
from streams.core.events import Click, Order, OrderLine
from streams.core.processor import PartitionState, Processor
from streams.core.state import UserState
from tests.core.fakes import FakeRecommender
from tests.core.test_processor import T0, Driver, click, recs_of

VERSION = FakeRecommender.version


def processor(**rules: object) -> Processor:
    return Processor(FakeRecommender(), RulesConfig(**{"enabled_triggers": (), **rules}))  # type: ignore[arg-type]


def impression(n: int, user: str, ts: int, rec_id: str, placement: str | None = "home") -> Click:
    return Click(f"i{n}", user, "impression", ts, rec_id=rec_id, placement=placement, items=("sku-1",))


def placed(n: int, user: str, ts: int, *lines: tuple[str, int, float], rec_id: str | None = None) -> Order:
    items = tuple(OrderLine(item, quantity, price) for item, quantity, price in lines)
    return Order(f"o{n}", user, f"ord{n}", "placed", items, ts, rec_id=rec_id)


def counts(driver: Driver) -> dict[tuple[str, str], list[int]]:
    """(version, placement) -> [impressions, clicks, add_to_carts, orders, revenue_cents], all partitions."""
    out: dict[tuple[str, str], list[int]] = {}
    for part in driver.partitions.values():
        for version, places in part.attribution.to_wire().items():
            for placement, row in places.items():
                into = out.setdefault((version, placement), [0] * 5)
                out[(version, placement)] = [a + b for a, b in zip(into, row, strict=True)]
    return out


def shown_then_clicked(driver: Driver, user: str = "u") -> str:
    """A view; its recommendation shown at `home`; the shopper clicks its second item. Its rec_id."""
    out = driver.run([click(1, user, T0, item="sku-10")])
    rec = recs_of(out)[0]
    chosen = rec["items"][1]["item_id"]
    driver.run(
        [
            impression(2, user, T0 + 1000, rec["rec_id"]),
            click(3, user, T0 + 2000, item=chosen, rec_id=rec["rec_id"], position=2, placement="home"),
        ]
    )
    return chosen


def test_a_click_on_a_shown_recommendation_and_what_it_led_to_are_counted() -> None:
    driver = Driver(processor())
    chosen = shown_then_clicked(driver)
    driver.run(
        [
            click(4, "u", T0 + 3000, "add_to_cart", item=chosen, price=12.5),
            click(5, "u", T0 + 4000, "add_to_cart", item="sku-77"),  # never clicked from a recommendation
            placed(6, "u", T0 + 5000, (chosen, 2, 12.5), ("sku-77", 1, 99.0)),
        ]
    )
    assert counts(driver) == {(VERSION, "home"): [1, 1, 1, 1, 2500]}


def test_an_impression_is_counted_but_changes_neither_the_history_nor_the_recommendation() -> None:
    driver = Driver(processor())
    out = driver.run([click(1, "u", T0, item="sku-10")])
    before = driver.states["u"]
    again = driver.run([impression(2, "u", T0 + 1000, recs_of(out)[0]["rec_id"])])
    assert recs_of(again) == [] and not [o for o in again if o.topic == "audience-segments"]
    after = driver.states["u"]
    assert after.recent == before.recent and after.recommendation == before.recommendation
    assert after.last_ts == before.last_ts and after.counters == before.counters
    assert after.offsets != before.offsets  # applied: a re-delivery of it is skipped
    assert counts(driver) == {(VERSION, "home"): [1, 0, 0, 0, 0]}


def test_a_conversion_outside_the_window_or_before_the_click_is_not_attributed() -> None:
    driver = Driver(processor(attribution_window_ms=HOUR))
    chosen = shown_then_clicked(driver)
    driver.run(
        [
            click(4, "u", T0 + 2000 + HOUR + 1, "add_to_cart", item=chosen),
            placed(5, "u", T0 + 2000 + 2 * HOUR, (chosen, 1, 5.0)),
        ]
    )
    assert counts(driver) == {(VERSION, "home"): [1, 1, 0, 0, 0]}
    late = Driver(processor(attribution_window_ms=HOUR))
    chosen = shown_then_clicked(late)
    late.run([click(4, "u", T0 + 1500, "add_to_cart", item=chosen)])  # arrived late: before the click
    assert counts(late) == {(VERSION, "home"): [1, 1, 0, 0, 0]}


def test_the_last_touch_before_the_conversion_takes_it() -> None:
    driver = Driver(processor())
    chosen = shown_then_clicked(driver)
    rec_id = driver.states["u"].recommendation[0]  # type: ignore[index]  # the click's own
    driver.run(
        [
            impression(4, "u", T0 + 3000, rec_id, placement="cart"),
            click(5, "u", T0 + 4000, item=chosen, rec_id=rec_id),  # placement from its impression
            placed(6, "u", T0 + 5000, (chosen, 1, 20.0)),
        ]
    )
    assert counts(driver) == {(VERSION, "home"): [1, 1, 0, 0, 0], (VERSION, "cart"): [1, 1, 0, 1, 2000]}


def test_repeats_unknown_recommendations_and_orders_that_name_one() -> None:
    driver = Driver(processor())
    out = driver.run([click(1, "u", T0, item="sku-10")])
    rec_id = recs_of(out)[0]["rec_id"]
    driver.run(
        [
            impression(2, "u", T0 + 1000, rec_id),
            impression(3, "u", T0 + 1100, rec_id),  # the same list re-rendered: one impression
            impression(4, "u", T0 + 1200, "r-from-elsewhere", placement=None),
            placed(5, "u", T0 + 2000, ("sku-3", 2, 1.25), ("sku-4", 1, None), rec_id=rec_id),
        ]
    )
    assert counts(driver) == {
        (VERSION, "home"): [1, 0, 0, 1, 250],
        (UNKNOWN_VERSION, UNSPECIFIED_PLACEMENT): [1, 0, 0, 0, 0],
    }
    driver.run([placed(6, "u", T0 + 3000, ("sku-3", 1, 1.0))])  # nothing touched: not attributed
    assert counts(driver)[(VERSION, "home")][3] == 1


def test_a_shoppers_part_and_the_partition_counts_stay_bounded() -> None:
    driver = Driver(processor())
    out = driver.run([click(1, "u", T0, item="sku-10")])
    rec_id = recs_of(out)[0]["rec_id"]
    events: list[Click | Order] = []
    for n in range(MAX_PLACEMENTS + 5):
        ts = T0 + (n + 1) * 1000
        events.append(impression(100 + n, "u", ts, rec_id, placement=f"slot-{n}"))
        events.append(click(200 + n, "u", ts + 1, item=f"sku-{n}", rec_id=rec_id))
    driver.run(events)
    state = driver.states["u"]
    assert state.attribution is not None and len(state.attribution.touches) == TOUCHES_KEPT
    assert len(state.attribution.shown) < 10
    places = driver.partitions[0].attribution.to_wire()[VERSION]
    assert len(places) == MAX_PLACEMENTS + 1 and places[OTHER][0] == 5


def _traffic(seed: int) -> list[Click | Order]:
    """Views, impressions of made-up rec ids, clicks on them, carts and orders, for a few users."""
    rng = random.Random(seed)
    events: list[Click | Order] = []
    ts = T0
    for n in range(500):
        ts += rng.choice([1000, 60_000, 20 * MINUTE])
        user, item = f"u{rng.randrange(6)}", f"sku-{rng.randrange(20)}"
        rec_id, placement = f"r-{rng.randrange(4)}", rng.choice(["home", "cart", None])
        r = rng.random()
        if r < 0.3:
            events.append(click(n, user, ts, item=item))
        elif r < 0.5:
            events.append(impression(n, user, ts, rec_id, placement))
        elif r < 0.7:
            events.append(click(n, user, ts, item=item, rec_id=rec_id, placement=placement))
        elif r < 0.9:
            events.append(click(n, user, ts, "add_to_cart", item=item))
        else:
            events.append(placed(n, user, ts, (item, 1 + rng.randrange(3), 9.99)))
    return events


def test_batches_of_any_size_and_redelivery_count_exactly_once() -> None:
    events = _traffic(5)

    def partition_of(user: str) -> int:
        return int(user[1:]) % 2

    baseline = Driver(processor(), batch_size=1)
    baseline.run(events, partition_of)
    expected = counts(baseline)
    assert all(any(row[i] for row in expected.values()) for i in range(5)), expected
    for size in (3, 64, 500):
        driver = Driver(processor(), batch_size=size)
        driver.run(events, partition_of)
        assert counts(driver) == expected, size
        assert driver.states == baseline.states
    baseline.offsets.clear()  # the same offsets again, as after a crash
    baseline.run(events, partition_of)
    assert counts(baseline) == expected


def test_state_and_partition_wire_forms_keep_the_attribution() -> None:
    driver = Driver(processor())
    shown_then_clicked(driver)
    state = driver.states["u"]
    wire = msgpack.unpackb(encode_value(state.to_wire()))
    assert UserState.from_wire(wire) == state
    assert state.to_dict()["attribution"]["touches"][0]["placement"] == "home"
    part = driver.partitions[0]
    restored = PartitionState.from_wire(msgpack.unpackb(encode_value(part.to_wire())))
    assert restored.attribution.to_wire() == part.attribution.to_wire()
    assert "a" not in UserState("nobody").to_wire()  # shoppers who never see one pay nothing


def test_the_summary_adds_partitions_up_with_rates() -> None:
    one, two = AttributionCounts(), AttributionCounts()
    one.add("m1", "home", 0, 10)
    one.add("m1", "home", 1, 2)
    two.add("m1", "home", 0, 10)
    two.add("m1", "home", 3)
    two.add("m1", "home", 4, 1999)
    two.add("m2", "cart", 0, 4)
    summary = summarize([one.to_wire(), two.to_wire()], HOUR)
    assert summary["attribution_window_ms"] == HOUR
    assert summary["totals"]["impressions"] == 24 and summary["totals"]["revenue"] == 19.99
    home, cart = summary["rows"]
    assert (home["model_version"], home["placement"], home["click_through_rate"]) == ("m1", "home", 0.1)
    assert home["orders_per_click"] == 0.5 and cart["click_through_rate"] == 0.0
    assert cart["orders_per_click"] is None
