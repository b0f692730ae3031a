"""Demand windows in the core: window assignment, watermark-driven emission, ids, late events."""

from __future__ import annotations

import msgpack
import pytest

from streams.core.config import HOUR, MINUTE, RulesConfig
from streams.core.demand import DemandWindows, WindowSpec
from streams.core.processor import Output, PartitionState, Processor
from streams.core.recommend import TrendingOnly
from tests.core.test_processor import Driver, click, order

T0 = 1_700_000_000_000 - 1_700_000_000_000 % HOUR  # on the hour, so window bounds are easy to read
TUMBLING = (HOUR, HOUR, ("item", "category"))
HOPPING = (HOUR, 15 * MINUTE, ("category",))


def processor(*windows: tuple[int, int, tuple[str, ...]], lateness: int = 0) -> Processor:
    config = RulesConfig(demand_windows=windows or (TUMBLING, HOPPING), demand_lateness_ms=lateness)
    return Processor(TrendingOnly(), config)


def demand(outputs: list[Output], hop: int | None = None) -> list[dict]:
    return [
        o.value for o in outputs if o.topic == "demand" and (hop is None or o.value["window_hop_ms"] == hop)
    ]


def by_key(values: list[dict]) -> dict[tuple[int, str, str], dict]:
    return {(v["window_start"], v["scope"], v["key"]): v for v in values}


def test_events_land_in_every_window_that_holds_them() -> None:
    driver = Driver(processor())
    out = driver.run(
        [
            click(1, "u", T0 + 5 * MINUTE, item="sku-1", category="books"),
            click(2, "u", T0 + 20 * MINUTE, "add_to_cart", item="sku-1", category="books"),
            click(3, "u", T0 + 50 * MINUTE, item="sku-2", category="toys"),
            click(4, "u", T0 + 3 * HOUR, "search", item=None),  # moves event time on, counts nowhere
        ]
    )
    tumbling = by_key(demand(out, HOUR))
    assert (tumbling[(T0, "item", "sku-1")]["views"], tumbling[(T0, "item", "sku-1")]["carts"]) == (1, 1)
    assert tumbling[(T0, "category", "toys")]["views"] == 1
    assert {k: v for k, v in tumbling[(T0, "total", "all")].items() if k in ("views", "carts")} == {
        "views": 2,
        "carts": 1,
    }
    hopping = by_key(demand(out, 15 * MINUTE))
    assert not any(scope == "item" for _, scope, _ in hopping)  # items only where configured
    # The cart at :20 is in the hopping windows starting at -:30, -:15, :00 and :15 ...
    assert [hopping[(T0 + m * MINUTE, "category", "books")]["carts"] for m in (-30, -15, 0, 15)] == [1] * 4
    assert hopping[(T0 - 45 * MINUTE, "category", "books")]["carts"] == 0  # -:45 to :15 has the view only
    # ... but not in the one starting at :30, which holds only the view at :50.
    assert (T0 + 30 * MINUTE, "category", "books") not in hopping
    assert hopping[(T0 + 30 * MINUTE, "total", "all")]["views"] == 1
    assert (T0 + HOUR, "total", "all") not in tumbling  # an hour without events sends nothing
    assert all(v["views"] + v["carts"] for v in tumbling.values())


def test_a_window_is_emitted_once_when_the_watermark_passes_its_end_plus_the_lateness() -> None:
    driver = Driver(processor(TUMBLING, lateness=10 * MINUTE))
    first = driver.run([click(1, "u", T0 + MINUTE), click(2, "v", T0 + HOUR + 9 * MINUTE)])
    assert demand(first) == []  # the watermark is 1 min short of the window end + lateness
    second = driver.run([click(3, "u", T0 + HOUR + 10 * MINUTE)])
    assert [(v["window_start"], v["scope"]) for v in demand(second)] == [(T0, "item"), (T0, "total")]
    third = driver.run([click(4, "v", T0 + HOUR + 30 * MINUTE)])
    assert demand(third) == []


def test_orders_count_once_per_key_with_their_units_and_the_category_the_shopper_saw() -> None:
    driver = Driver(processor(TUMBLING))
    out = driver.run(
        [
            click(1, "u", T0 + MINUTE, "add_to_cart", item="sku-1", category="books"),
            click(2, "u", T0 + 2 * MINUTE, "add_to_cart", item="sku-2", category="books"),
            order(3, "u", T0 + 3 * MINUTE, "sku-1", "sku-2"),
            click(4, "u", T0 + 2 * HOUR),
        ]
    )
    windows = by_key(demand(out))
    books = windows[(T0, "category", "books")]
    assert (books["orders"], books["units"], books["carts"]) == (1, 2, 2)
    assert (windows[(T0, "item", "sku-1")]["orders"], windows[(T0, "total", "all")]["orders"]) == (1, 1)


def test_ids_depend_on_window_key_and_partition_only() -> None:
    events = [
        click(n, f"u{n % 3}", T0 + n * 7 * MINUTE, item=f"sku-{n % 4}", category="c") for n in range(40)
    ]
    out = Driver(processor()).run(events, partition_of=lambda user: int(user[1:]) % 2)
    values = demand(out)
    assert len({v["demand_id"] for v in values}) == len(values)
    again = Driver(processor()).run(events, partition_of=lambda user: int(user[1:]) % 2)
    assert demand(again) == values
    assert {v["partition"] for v in values} == {0, 1}


def test_a_restart_from_the_stored_partition_state_re_emits_the_same_windows() -> None:
    events = [click(n, "u", T0 + n * 11 * MINUTE, item=f"sku-{n % 5}") for n in range(30)]
    driver = Driver(processor())
    driver.run(events[:10])
    stored = {p: msgpack.packb(s.to_wire()) for p, s in driver.partitions.items()}
    after = demand(driver.run(events[10:]))
    assert after
    # Crash: the partition state goes back to what was stored, the events after it come again.
    restarted = Driver(processor())
    restarted.states, restarted.offsets = driver.states, {0: 9}
    restarted.partitions = {p: PartitionState.from_wire(msgpack.unpackb(raw)) for p, raw in stored.items()}
    assert demand(restarted.run(events[10:])) == after
    # Events the partition already counted (offsets at or below its own) count no second time.
    restarted.offsets = {0: 9}
    assert demand(restarted.run(events[10:])) == []


def test_an_event_later_than_all_its_windows_counts_nowhere_and_is_counted_as_late() -> None:
    driver = Driver(processor(TUMBLING, HOPPING, lateness=5 * MINUTE))
    driver.run([click(1, "u", T0 + 10 * MINUTE), click(2, "u", T0 + HOUR + 50 * MINUTE)])
    # Watermark 1:50 minus 5 min lateness: every window ending by 1:45 is emitted. An event at 0:55
    # belongs to 0:00-1:00 and to hopping windows ending by 1:45 only: late. One at 1:00 still
    # reaches the open windows 1:00-2:00 (and misses the emitted hopping ones it was also in).
    late = driver.run([click(3, "v", T0 + 55 * MINUTE, item="sku-9", category="late")])
    partial = driver.run([click(4, "v", T0 + HOUR, item="sku-8", category="partial")])
    assert driver.partitions[0].demand is not None and driver.partitions[0].demand.late == 1
    rest = driver.run([click(5, "u", T0 + 5 * HOUR)])
    assert demand(late) == demand(partial) == []
    keys = {(v["window_start"], v["key"]) for v in demand(rest)}
    assert not any(key == "late" or key == "sku-9" for _, key in keys)
    assert (T0 + HOUR, "partial") in keys and (T0 + HOUR, "sku-8") in keys


def test_window_settings_are_checked_and_load_from_toml(tmp_path) -> None:
    path = tmp_path / "rules.toml"
    path.write_text("demand_windows = [[86400000, 3600000, []]]\ndemand_lateness_ms = 0\n")
    config = RulesConfig.load(path)
    assert config.window_specs() == (WindowSpec(86_400_000, HOUR, ()),)
    with pytest.raises(ValueError, match="multiple of hop"):
        RulesConfig.from_mapping({"demand_windows": [[HOUR, 25 * MINUTE, []]]})
    with pytest.raises(ValueError, match="scope"):
        RulesConfig.from_mapping({"demand_windows": [[HOUR, HOUR, ["brand"]]]})
    off = Driver(Processor(TrendingOnly(), RulesConfig(demand_windows=())))
    assert demand(off.run([click(1, "u", T0), click(2, "u", T0 + 5 * HOUR)])) == []


def test_panes_are_dropped_once_no_open_window_needs_them() -> None:
    windows = DemandWindows((WindowSpec(HOUR, 15 * MINUTE),))
    assert windows.pane_ms == 15 * MINUTE
    for n in range(48):
        windows.count(T0 + n * 15 * MINUTE, {"t:all": [1, 0, 0, 0]})
        windows.close(T0 + n * 15 * MINUTE, partition=0)
    assert len(windows.panes) <= 5


def test_each_window_ends_with_its_total_and_goes_to_the_input_partitions_number() -> None:
    events = [
        click(n, f"u{n % 4}", T0 + n * 9 * MINUTE, item=f"sku-{n % 6}", category="c") for n in range(60)
    ]
    out = [o for o in Driver(processor()).run(events, lambda user: int(user[1:]) % 2) if o.topic == "demand"]
    assert out and all(o.partition == o.value["partition"] for o in out)
    groups: dict[tuple[int, int, int], list[str]] = {}
    for o in out:  # per (input partition, window), in the order they were emitted
        v = o.value
        groups.setdefault((v["partition"], v["window_end"], v["window_hop_ms"]), []).append(v["scope"])
    assert all(scopes[-1] == "total" and scopes.count("total") == 1 for scopes in groups.values())
    for partition in (0, 1):  # and windows come in order of their end
        ends = [o.value["window_end"] for o in out if o.partition == partition]
        assert ends == sorted(ends)


def test_an_event_time_far_ahead_skips_the_empty_windows_in_one_step() -> None:
    windows = DemandWindows((WindowSpec(HOUR, 15 * MINUTE),))
    windows.count(T0, {"t:all": [1, 0, 0, 0]})
    far = T0 + 200 * 365 * 24 * HOUR  # a producer's broken clock: 200 years on
    windows.count(far, {"t:all": [0, 1, 0, 0]})
    closed = windows.close(far + HOUR, partition=0)  # would be 7 million empty windows one by one
    assert [(v["window_end"], v["views"], v["carts"]) for v in closed] == [
        *((T0 + m * 15 * MINUTE, 1, 0) for m in (1, 2, 3, 4)),
        *((far + m * 15 * MINUTE, 0, 1) for m in (1, 2, 3, 4)),
    ]
