from __future__ import annotations

import pytest

from streams.core.catalog import CatalogItem
from streams.core.config import RulesConfig
from streams.core.trigger_payload import cart_value, enriched_items, link

CATALOG = {"a": CatalogItem("a", 1, price=5.5, title="Lamp", category="home", url="https://s.example/p/a")}


def test_items_take_the_catalogs_facts_and_keep_what_it_does_not_know() -> None:
    items = [{"item_id": "a", "quantity": 2, "price": 6.0}, {"item_id": "b", "price": 3.0}]
    got = enriched_items(items, CATALOG)
    assert got == [
        {
            "item_id": "a",
            "quantity": 2,
            "price": 5.5,  # the price as of the trigger
            "title": "Lamp",
            "category": "home",
            "url": "https://s.example/p/a",
        },
        {"item_id": "b", "price": 3.0},  # unknown to the catalog: the price the shopper saw
    ]
    assert items[0]["price"] == 6.0  # the candidate's items are not changed in place
    assert cart_value(got) == 14.0
    assert cart_value([{"item_id": "c", "quantity": 3}]) == 0.0
    assert enriched_items(items, None) == items


def test_a_link_quotes_what_it_fills_in() -> None:
    template = "https://shop.example/cart?u={user_id}&k={kind}"
    assert link(template, "a b&c", "t-1", "cart_abandonment") == (
        "https://shop.example/cart?u=a%20b%26c&k=cart_abandonment"
    )
    assert link(None, "u", "t-1", "cart_abandonment") is None


def test_the_rules_file_names_a_link_per_kind_or_for_all() -> None:
    links = {
        "cart_abandonment": "https://s.example/cart?u={user_id}",
        "*": "https://s.example/?t={trigger_id}",
    }
    config = RulesConfig.from_mapping(
        {"trigger_links": links, "currency": "USD", "checkout_timeout_ms": 60_000}
    )
    assert config.trigger_links == links and config.currency == "USD" and config.checkout_timeout_ms == 60_000


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"trigger_links": {"cart": "https://s.example"}}, "unknown trigger kind 'cart'"),
        ({"trigger_links": {"*": "https://s.example/{email}"}}, "unknown field(s) email"),
        ({"trigger_links": {"*": "https://s.example/{}"}}, "unknown field(s)"),
        ({"trigger_links": {"*": "https://s.example/{user_id"}}, "trigger_links.*"),
        ({"trigger_links": {"*": ""}}, "non-empty string"),
        ({"currency": "euro"}, "ISO 4217"),
    ],
)
def test_a_bad_link_template_or_currency_is_refused_when_the_rules_load(
    raw: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError) as caught:
        RulesConfig.from_mapping(raw)
    assert message in str(caught.value)
