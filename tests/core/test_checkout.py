"""Checkout abandonment: a checkout started and no order within `checkout_timeout_ms`, one trigger
that a marketing tool can send as it is (items as the catalog knows them, the cart's value)."""

from __future__ import annotations

import random

from streams.core.catalog import CatalogItem
from streams.core.config import MINUTE, RulesConfig
from streams.core.processor import Processor
from streams.schemas import validate
from tests.core.fakes import FakeRecommender
from tests.core.test_processor import T0, Driver, click, order, triggers_of

CATALOG = {
    f"sku-{n}": CatalogItem(
        f"sku-{n}",
        T0 - 1,
        price=10.0 + n,
        in_stock=True,
        category="shoes",
        title=f"Sneaker {n}",
        image_url=f"https://shop.example/img/sku-{n}.jpg",
        url=f"https://shop.example/p/sku-{n}",
    )
    for n in range(10)
}
LINKS = {"checkout_abandonment": "https://shop.example/checkout?u={user_id}&t={trigger_id}"}


def processor(**rules: object) -> Processor:
    config = RulesConfig(**{"trigger_links": LINKS, **rules})  # type: ignore[arg-type]
    return Processor(FakeRecommender(), config, catalog=dict(CATALOG))


def checkout(user: str = "u", ts: int = T0) -> list:
    return [
        click(1, user, ts, "add_to_cart", item="sku-3", quantity=2),
        click(2, user, ts + 1000, "add_to_cart", item="sku-4"),
        click(3, user, ts + 2000, "checkout_started", item=None),
    ]


def later(n: int, ts: int) -> list:
    """Another shopper on the same partition moves event time on."""
    return [click(100 + n, "other", ts, item="sku-9")]


def test_an_abandoned_checkout_gets_exactly_one_trigger_with_what_an_email_needs() -> None:
    driver = Driver(processor())
    out = driver.run(checkout())
    out += driver.run(later(1, T0 + 2000 + 30 * MINUTE - 1))
    assert triggers_of(out) == []  # not yet due
    out = driver.run(later(2, T0 + 2000 + 30 * MINUTE) + later(3, T0 + 10 * 60 * MINUTE))
    [trigger] = triggers_of(out)
    assert trigger["kind"] == "checkout_abandonment" and trigger["user_id"] == "u"
    assert trigger["ts"] == T0 + 2000 + 30 * MINUTE
    assert trigger["items"] == [
        {
            "item_id": "sku-3",
            "quantity": 2,
            "title": "Sneaker 3",
            "category": "shoes",
            "price": 13.0,
            "image_url": "https://shop.example/img/sku-3.jpg",
            "url": "https://shop.example/p/sku-3",
        },
        {
            "item_id": "sku-4",
            "quantity": 1,
            "title": "Sneaker 4",
            "category": "shoes",
            "price": 14.0,
            "image_url": "https://shop.example/img/sku-4.jpg",
            "url": "https://shop.example/p/sku-4",
        },
    ]
    assert trigger["value"] == 2 * 13.0 + 14.0 and trigger["currency"] == "EUR"
    assert trigger["link"] == f"https://shop.example/checkout?u=u&t={trigger['trigger_id']}"
    assert validate("promotion_trigger", trigger) is trigger
    # The cart trigger gives way to the checkout one: no second message about the same cart.
    assert triggers_of(driver.run(later(4, T0 + 40 * 60 * MINUTE))) == []


def test_an_order_within_the_timeout_means_no_trigger_at_all() -> None:
    driver = Driver(processor())
    out = driver.run([*checkout(), order(4, "u", T0 + 5 * MINUTE, "sku-3", "sku-4")])
    out += driver.run(later(1, T0 + 10 * 60 * MINUTE))
    assert triggers_of(out) == []
    assert "checkout_abandonment" not in driver.states["u"].timers


def test_activity_after_the_checkout_neither_moves_nor_repeats_the_trigger() -> None:
    driver = Driver(processor())
    events = [*checkout(), click(4, "u", T0 + 10 * MINUTE, item="sku-5"), click(5, "u", T0 + 20 * MINUTE)]
    out = driver.run(events)
    out += driver.run(later(1, T0 + 2000 + 30 * MINUTE))
    [trigger] = triggers_of(out, "checkout_abandonment")
    assert trigger["ts"] == T0 + 2000 + 30 * MINUTE  # due from the checkout, not the last view
    more = driver.run([click(6, "u", T0 + 40 * MINUTE, item="sku-6"), *later(2, T0 + 10 * 60 * MINUTE)])
    assert triggers_of(more, "checkout_abandonment") == []


def test_the_same_policy_as_every_trigger() -> None:
    opted_out = Driver(processor())
    events = checkout()
    events[0] = click(1, "u", T0, "add_to_cart", item="sku-3", quantity=2, marketing_consent=False)
    out = opted_out.run([*events, *later(1, T0 + 10 * 60 * MINUTE)])
    assert triggers_of(out) == []
    disabled = Driver(processor(enabled_triggers=("cart_abandonment",)))
    out = disabled.run([*checkout(), *later(1, T0 + 10 * 60 * MINUTE)])
    assert [t["kind"] for t in triggers_of(out)] == ["cart_abandonment"]  # the cart is followed up instead


def test_batches_give_what_one_by_one_gives() -> None:
    events = [*checkout("a"), *checkout("b", T0 + 1), order(9, "b", T0 + 60_000, "sku-3")]
    # a's checkout is due, then a comes back: the trigger fires in the same batch as the return or
    # in an earlier one, and either way the cart is followed up again from the return on.
    events += later(1, T0 + 31 * MINUTE)
    events += [click(10, "a", T0 + 32 * MINUTE, item="sku-7"), *later(2, T0 + 10 * 60 * MINUTE)]
    one = Driver(processor()).run(events)
    for size in range(2, len(events) + 1):
        assert Driver(processor(), batch_size=size).run(events) == one, size
    assert [t["user_id"] for t in triggers_of(one, "checkout_abandonment")] == ["a"]
    [cart] = triggers_of(one, "cart_abandonment")
    assert (cart["user_id"], cart["ts"]) == ("a", T0 + 62 * MINUTE)


def test_random_traffic_with_checkouts_gives_the_same_whatever_the_batching() -> None:
    rng = random.Random(5)
    events: list = []
    ts = T0
    for n in range(800):
        ts += rng.choice([1000, 60_000, 20 * MINUTE, 45 * MINUTE])
        user, item, r = f"u{rng.randrange(10)}", f"sku-{rng.randrange(10)}", rng.random()
        if r < 0.5:
            events.append(click(n, user, ts, item=item))
        elif r < 0.75:
            events.append(click(n, user, ts, "add_to_cart", item=item))
        elif r < 0.9:
            events.append(click(n, user, ts, "checkout_started", item=None))
        else:
            events.append(order(n, user, ts, item))
    rules = {"cap_per_kind": 1000, "cap_overall": 1000}
    baseline = Driver(processor(**rules))
    expected = baseline.run(events, lambda user: int(user[1:]) % 3)
    kinds = {t["kind"] for t in triggers_of(expected)}
    assert {"checkout_abandonment", "cart_abandonment"} <= kinds
    for size in (2, 7, 64, 800):
        driver = Driver(processor(**rules), batch_size=size)
        assert driver.run(events, lambda user: int(user[1:]) % 3) == expected, size
        assert driver.states == baseline.states
