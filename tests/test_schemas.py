from __future__ import annotations

import json

import pytest

from streams.errors import SchemaViolation
from streams.schemas import EVENT_KINDS, load_schema, schemas_dir, validate


@pytest.mark.parametrize("kind", EVENT_KINDS)
def test_every_schema_has_examples_that_validate(kind: str) -> None:
    schema = load_schema(kind)
    assert schema["examples"], f"{kind} schema has no examples"
    for example in schema["examples"]:
        validate(kind, example)


def test_one_schema_file_per_event_type() -> None:
    files = sorted(p.name for p in schemas_dir().glob("*.json"))
    assert files == sorted(f"{kind}.v1.json" for kind in EVENT_KINDS)
    for path in schemas_dir().glob("*.json"):
        json.loads(path.read_text())


CLICK = {"event_id": "e1", "user_id": "u1", "type": "view", "item_id": "i1", "ts": 1}


@pytest.mark.parametrize(
    ("change", "code", "field"),
    [
        ({"user_id": None}, "wrong_type", "data.user_id"),
        ({"ts": "soon"}, "wrong_type", "data.ts"),
        ({"type": "teleport"}, "unknown_value", "data.type"),
        ({"item_id": "x" * 129}, "too_long", "data.item_id"),
        ({"quantity": 0}, "out_of_range", "data.quantity"),
        ({"ts": True}, "wrong_type", "data.ts"),
    ],
)
def test_click_violations_name_the_field(change: dict[str, object], code: str, field: str) -> None:
    with pytest.raises(SchemaViolation) as caught:
        validate("click", {**CLICK, **change})
    assert (caught.value.code, caught.value.field) == (code, field)
    assert field in caught.value.message


def test_missing_fields_are_named() -> None:
    value = dict(CLICK)
    del value["user_id"]
    with pytest.raises(SchemaViolation) as caught:
        validate("click", value)
    assert (caught.value.code, caught.value.field) == ("missing_field", "data.user_id")


def test_item_id_is_required_except_for_search() -> None:
    search = {k: v for k, v in CLICK.items() if k != "item_id"}
    validate("click", {**search, "type": "search", "query": "red shoes"})
    validate("click", {**search, "type": "checkout_started"})
    for kind in ("view", "add_to_cart", "remove_from_cart"):
        with pytest.raises(SchemaViolation) as caught:
            validate("click", {**search, "type": kind})
        assert (caught.value.code, caught.value.field) == ("missing_field", "data.item_id")


ITEMLESS_CLICKS = {
    "search",
    "impression",
    "checkout_started",
}  # an impression is of a list, a checkout of the cart


def test_every_click_type_but_search_impression_and_checkout_requires_an_item() -> None:
    """The condition names the types that need an item (a valid click then raises nothing inside
    the validator); a new type must be named there too. An impression names its items in `items`."""
    schema = load_schema("click")
    needing = schema["if"]["properties"]["type"]["enum"]
    assert sorted(needing) == sorted(set(schema["properties"]["type"]["enum"]) - ITEMLESS_CLICKS)
    assert schema["then"] == {"required": ["item_id"]}


def test_an_impression_needs_the_recommendation_it_showed() -> None:
    shown = {"event_id": "c-9", "user_id": "u-1", "type": "impression", "ts": 1, "placement": "home"}
    with pytest.raises(SchemaViolation) as caught:
        validate("click", shown)
    assert (caught.value.code, caught.value.field) == ("missing_field", "data.rec_id")
    validate("click", {**shown, "rec_id": "r-1", "items": ["sku-1", "sku-2"]})
    with pytest.raises(SchemaViolation) as caught:
        validate("click", {**shown, "rec_id": "r-1", "items": [""]})
    assert caught.value.code == "too_short"


def test_clicks_and_orders_may_say_which_recommendation_they_came_from() -> None:
    validate("click", {**CLICK, "rec_id": "r-1", "position": 3, "placement": "product_page"})
    with pytest.raises(SchemaViolation) as caught:
        validate("click", {**CLICK, "rec_id": "r-1", "position": 0})
    assert (caught.value.code, caught.value.field) == ("out_of_range", "data.position")
    line = {"item_id": "sku-1", "quantity": 1}
    order = {"event_id": "o", "user_id": "u", "order_id": "x", "status": "placed", "items": [line], "ts": 1}
    validate("order", {**order, "rec_id": "r-1", "placement": "email"})
    with pytest.raises(SchemaViolation) as caught:
        validate("order", {**order, "placement": ""})
    assert caught.value.code == "too_short"


def test_order_items_are_checked() -> None:
    order = {
        "event_id": "o",
        "user_id": "u",
        "order_id": "x",
        "status": "placed",
        "ts": 5,
        "items": [{"item_id": "a", "quantity": 1}],
    }
    validate("order", order)
    with pytest.raises(SchemaViolation) as caught:
        validate("order", {**order, "items": []})
    assert caught.value.code == "too_few_items"
    with pytest.raises(SchemaViolation) as caught:
        validate("order", {**order, "items": [{"item_id": "a"}]})
    assert caught.value.field == "data.items[0].quantity"


def test_unknown_optional_fields_are_allowed() -> None:
    validate("click", {**CLICK, "referrer": "newsletter"})
