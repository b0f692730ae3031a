"""The contact policy tells an observer what it refused and why; observing changes no output."""

from __future__ import annotations

from collections import Counter

from streams.core.config import MINUTE
from tests.core.test_processor import T0, Driver, click, processor


def refusals(**rules: object) -> tuple[Counter[tuple[str, str]], Driver]:
    seen: Counter[tuple[str, str]] = Counter()
    core = processor(**rules)
    core.on_suppressed = lambda kind, reason: seen.update([(kind, reason)])
    return seen, Driver(core)


def test_an_opted_out_shoppers_trigger_is_refused_as_opted_out() -> None:
    seen, driver = refusals()
    driver.run(
        [
            click(1, "u", T0, "add_to_cart", item="sku-3", marketing_consent=False),
            click(2, "other", T0 + 120 * MINUTE),  # moves event time past the cart timeout
        ]
    )
    assert seen == Counter({("cart_abandonment", "opted_out"): 1})


def test_triggers_over_the_cap_are_counted_by_kind_and_reason_and_outputs_do_not_change() -> None:
    config = {"enabled_triggers": ("high_intent",), "high_intent_threshold": 0.3}
    burst = [click(i, "u", T0 + i * 1000, "add_to_cart", item=f"sku-{i}") for i in range(1, 30)]
    seen, observed = refusals(**config)
    with_observer = observed.run(burst)
    without = Driver(processor(**config)).run(burst)
    assert with_observer == without
    sent = [o for o in with_observer if o.topic == "promotion-triggers"]
    assert len(sent) == 1  # cap_per_kind = 1 a day
    assert set(seen) == {("high_intent", "cap_per_kind")}
    assert seen[("high_intent", "cap_per_kind")] >= 1
