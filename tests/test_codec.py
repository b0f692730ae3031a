from __future__ import annotations

import json

import msgpack
import pytest

from streams.codec import MAX_VALUE_BYTES, decode_key, decode_value, encode_value
from streams.core.events import Click, Order
from streams.errors import BadMessage, DecodeError
from streams.ingest import parse_user_event

CLICK = {"event_id": "e1", "user_id": "u1", "type": "add_to_cart", "item_id": "i1", "ts": 1, "quantity": 2}
JSON = [("content-type", b"application/json")]


def test_msgpack_round_trip() -> None:
    assert decode_value(encode_value(CLICK)) == CLICK


def test_json_needs_its_header() -> None:
    raw = json.dumps(CLICK).encode()
    assert decode_value(raw, JSON) == CLICK
    assert decode_value(raw, {"Content-Type": b"application/json; charset=utf-8"}) == CLICK
    with pytest.raises(DecodeError) as caught:
        decode_value(raw)
    assert caught.value.code == "json_without_content_type"


@pytest.mark.parametrize(
    ("raw", "headers", "code"),
    [
        (b"", None, "empty_value"),
        (None, None, "empty_value"),
        (b"\xc1\x00", None, "bad_msgpack"),
        (msgpack.packb([1, 2]), None, "not_a_map"),
        (b"{not json", JSON, "bad_json"),
        (b"\x80" + b"x" * MAX_VALUE_BYTES, None, "value_too_large"),
        (msgpack.packb({"a": 1}) + b"trailing", None, "bad_msgpack"),
    ],
)
def test_undecodable_values_get_stable_codes(raw: bytes | None, headers: object, code: str) -> None:
    with pytest.raises(DecodeError) as caught:
        decode_value(raw, headers)  # type: ignore[arg-type]
    assert caught.value.code == code


def test_keys() -> None:
    assert decode_key(b"u1") == "u1"
    assert decode_key(None) is None
    with pytest.raises(DecodeError):
        decode_key(b"\xff")


def test_parse_user_event_types_and_key_check() -> None:
    click = parse_user_event("clicks", b"u1", encode_value(CLICK))
    assert isinstance(click, Click) and click.quantity == 2
    order = {
        "event_id": "o",
        "user_id": "u1",
        "order_id": "x",
        "status": "placed",
        "ts": 5,
        "items": [{"item_id": "a", "quantity": 1, "price": 2.5}],
    }
    parsed = parse_user_event("orders", b"u1", encode_value(order))
    assert isinstance(parsed, Order) and parsed.items[0].price == 2.5
    with pytest.raises(BadMessage) as caught:
        parse_user_event("clicks", b"someone-else", encode_value(CLICK))
    assert caught.value.code == "key_mismatch"
