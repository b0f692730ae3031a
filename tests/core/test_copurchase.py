from __future__ import annotations

import msgpack

from streams.codec import encode_value
from streams.core.config import RulesConfig
from streams.core.copurchase import WINDOW_MS, CoPurchases
from streams.core.events import Order, OrderLine
from streams.core.processor import PartitionState, Processor
from tests.core.fakes import FakeRecommender
from tests.core.test_processor import T0, Driver, click, order


def test_an_orders_items_pair_with_each_other_and_with_earlier_purchases() -> None:
    counts = CoPurchases()
    counts.add_order(["b", "a", "c", "a"], earlier=["z", "a"])
    assert counts.counts == {
        ("a", "b"): 1,
        ("a", "c"): 1,
        ("b", "c"): 1,
        ("a", "z"): 1,
        ("b", "z"): 1,
        ("c", "z"): 1,
    }
    counts.add_order(["b"], earlier=["a"])
    assert counts.partners("a") == {"b": 2, "c": 1, "z": 1}
    assert counts.partners("b") == {"a": 2, "c": 1, "z": 1}
    assert counts.partners("q") == {}


def test_memory_is_bounded_and_the_most_counted_pairs_stay() -> None:
    counts = CoPurchases(capacity=3)
    for _ in range(5):
        counts.add_order(["a", "b"], [])
    for n in range(10):
        counts.add_order([f"x{n}", f"y{n}"], [])
        assert len(counts.counts) <= 6
    assert counts.counts[("a", "b")] == 5


def test_wire_round_trip_and_states_written_before_it() -> None:
    counts = CoPurchases()
    counts.add_order(["a", "b"], ["c"])
    state = PartitionState(Processor().new_partition_state().trending, bought=counts)
    raw = msgpack.unpackb(encode_value(state.to_wire()), raw=False)
    assert PartitionState.from_wire(raw).bought == counts
    del raw["bt"]
    assert PartitionState.from_wire(raw).bought == CoPurchases()


def test_the_stream_counts_orders_within_the_window_and_skips_cancelled_ones() -> None:
    driver = Driver(Processor(FakeRecommender(), RulesConfig()))
    cancel = Order("o9", "u1", "ord2", "cancelled", (OrderLine("sku-2", 1),), T0 + 3)
    driver.run(
        [
            click(1, "u1", T0),
            order(1, "u1", T0 + 1, "sku-1"),
            order(2, "u1", T0 + 2, "sku-2"),
            cancel,
            order(3, "u1", T0 + 4, "sku-3", "sku-4"),
            order(4, "u1", T0 + 2 + WINDOW_MS, "sku-5"),  # sku-1 is too old by now; sku-3, 4 are not
            order(5, "u2", T0 + 6, "sku-1", "sku-3"),
        ]
    )
    assert driver.partitions[0].bought.counts == {
        ("sku-1", "sku-2"): 1,
        ("sku-1", "sku-3"): 2,
        ("sku-1", "sku-4"): 1,
        ("sku-3", "sku-4"): 1,
        ("sku-3", "sku-5"): 1,
        ("sku-4", "sku-5"): 1,
    }


def test_a_redelivered_order_is_not_counted_twice() -> None:
    driver = Driver(Processor(FakeRecommender(), RulesConfig()))
    events = [order(1, "u1", T0, "sku-1", "sku-2")]
    driver.run(events)
    driver.offsets.clear()  # the same offsets again, as after a crash
    driver.run(events)
    assert driver.partitions[0].bought.counts == {("sku-1", "sku-2"): 1}
