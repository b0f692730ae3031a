from __future__ import annotations

import json
from typing import Any

import fastjsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.errors import SchemaViolation
from streams.schemas import EVENT_KINDS, _accepts, load_schema, schemas_dir, validate


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


# Values near the valid ones: every field of an input schema replaced by odd JSON-ish values.
_odd_text = st.text(alphabet=st.characters(codec=None), max_size=12) | st.sampled_from(
    ["", "a" * 128, "a" * 129, "🛒" * 128, "🛒" * 129, "a\ud800b", "USD", "usd", "US"]
)
_numbers = (
    st.integers(-(2**65), 2**65)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.sampled_from([0, -1, 1, 2.0, 1.5, -0.0, 9_999_999_999_999, 10_000_000_000_000, 10_000, 10_001])
)
_scalars = st.none() | st.booleans() | _numbers | _odd_text
_values = st.recursive(
    _scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_odd_text, inner, max_size=3)
)
INPUTS = {
    "click": {**CLICK, "quantity": 2, "price": 9.5, "items": ["a"], "position": 1},
    "order": {
        "event_id": "o1",
        "user_id": "u1",
        "order_id": "ord-1",
        "status": "placed",
        "ts": 1,
        "currency": "EUR",
        "items": [{"item_id": "sku-3", "quantity": 1, "price": 9.5}],
    },
    "catalog_item": {"item_id": "sku-3", "ts": 1, "price": 9.5, "in_stock": True, "category": "c"},
}


def _judged_by_fastjsonschema(kind: str, value: Any) -> bool:
    try:
        fastjsonschema.compile(load_schema(kind))(value)
    except fastjsonschema.JsonSchemaValueException:
        return False
    return True


@settings(deadline=None, max_examples=400)
@given(
    kind=st.sampled_from(sorted(INPUTS)),
    changes=st.dictionaries(st.sampled_from(sorted({k for v in INPUTS.values() for k in v})), _values),
    line=st.dictionaries(st.sampled_from(["item_id", "quantity", "price", "x"]), _values, max_size=2),
)
def test_the_fast_validator_accepts_nothing_fastjsonschema_refuses(
    kind: str, changes: dict[str, Any], line: dict[str, Any]
) -> None:
    """jsonschema-rs only shortcuts acceptance; what it accepts, the schema's reference validator
    accepts too (a refusal always goes through fastjsonschema, which names the rule)."""
    value = {**INPUTS[kind], **changes}
    if kind == "order" and "items" not in changes:
        value["items"] = [{**INPUTS["order"]["items"][0], **line}]
    try:
        accepted = _accepts(kind)(value)
    except Exception:  # validate() falls back on any error of the fast path
        accepted = False
    if accepted:
        assert _judged_by_fastjsonschema(kind, value), value
    try:
        assert validate(kind, value) is value
        assert _judged_by_fastjsonschema(kind, value)
    except SchemaViolation:
        assert not _judged_by_fastjsonschema(kind, value)
