from __future__ import annotations

import json

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.codec import MAX_VALUE_BYTES, decode_key, decode_value, encode_value
from streams.core.events import Click, Order
from streams.errors import BadMessage, DecodeError
from streams.ingest import parse_user_event

CLICK = {"event_id": "e1", "user_id": "u1", "type": "add_to_cart", "item_id": "i1", "ts": 1, "quantity": 2}
JSON = [("content-type", b"application/json")]


def test_msgpack_round_trip() -> None:
    assert decode_value(encode_value(CLICK)) == CLICK


def test_a_json_object_is_read_with_or_without_its_header() -> None:
    raw = json.dumps(CLICK).encode()
    assert decode_value(raw, JSON) == CLICK
    assert decode_value(raw, {"Content-Type": b"application/json; charset=utf-8"}) == CLICK
    assert decode_value(raw) == CLICK  # a plain-JSON tracker sends no header
    assert decode_value(b" \n" + raw, [("content-type", b"application/msgpack")]) == CLICK
    with pytest.raises(DecodeError) as caught:
        decode_value(b'{"ts": 1')  # JSON by its first byte, so its error is a JSON one
    assert caught.value.code == "bad_json"


def test_no_msgpack_map_starts_like_json() -> None:
    for size in (0, 1, 15, 16, 70_000):  # fixmap, map16 and map32 headers
        raw = encode_value({f"k{n}": n for n in range(size)})
        assert raw.lstrip(b" \t\r\n")[:1] != b"{"
        assert decode_value(raw, max_bytes=len(raw)) == {f"k{n}": n for n in range(size)}


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
        (b"[1, 2]", None, "bad_msgpack"),  # only an object is sniffed as JSON
        (b"[1, 2]", JSON, "not_a_map"),
    ],
)
def test_undecodable_values_get_stable_codes(raw: bytes | None, headers: object, code: str) -> None:
    with pytest.raises(DecodeError) as caught:
        decode_value(raw, headers)  # type: ignore[arg-type]
    assert caught.value.code == code


@pytest.mark.parametrize(
    ("raw", "headers", "code", "field"),
    [
        (encode_value({**CLICK, "price": float("nan")}), None, "out_of_range", "data.price"),
        (encode_value({**CLICK, "x": [{"y": float("inf")}]}), None, "out_of_range", "data.x[0].y"),
        (b'{"ts": NaN}', JSON, "bad_json", None),
        (b'{"ts": -Infinity}', JSON, "bad_json", None),
        (b'{"item_id": "a\\ud800"}', JSON, "bad_json", None),
        (b'{"a\\udfff": 1}', JSON, "bad_json", None),
        (b'{"x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", JSON, "bad_json", None),
    ],
)
def test_values_no_encoder_or_comparison_survives_are_refused(
    raw: bytes, headers: object, code: str, field: str | None
) -> None:
    with pytest.raises(BadMessage) as caught:
        decode_value(raw, headers)  # type: ignore[arg-type]
    assert (caught.value.code, caught.value.field) == (code, field)


@pytest.mark.parametrize("bad", [float("nan"), float("-nan"), float("inf"), float("-inf")])
@pytest.mark.parametrize("single", [False, True])
def test_a_non_finite_float_is_found_in_any_width_beside_finite_ones(bad: float, single: bool) -> None:
    """Values without a float that could be NaN or infinite skip the walk; the rest are walked."""
    finite = [0.0, -0.0, 18.99, -3.4e38, 1e-45] + ([] if single else [-1e300, 1.7e308, 5e-324])
    value = {**CLICK, "prices": finite, "x": [{"y": [*finite, bad]}]}
    raw = msgpack.packb(value, use_single_float=single)
    with pytest.raises(BadMessage) as caught:
        decode_value(raw)
    assert (caught.value.code, caught.value.field) == ("out_of_range", f"data.x[0].y[{len(finite)}]")
    fine = msgpack.packb({**value, "x": finite}, use_single_float=single)
    assert decode_value(fine)["x"] == msgpack.unpackb(fine)["x"]


def test_the_size_cap_is_a_parameter() -> None:
    raw = encode_value(CLICK)
    assert decode_value(raw, max_bytes=len(raw)) == CLICK
    with pytest.raises(DecodeError) as caught:
        decode_value(raw, max_bytes=len(raw) - 1)
    assert caught.value.code == "value_too_large"


def test_integral_floats_become_ints() -> None:
    """JSON Schema accepts 1.7e12 as an integer; the core must still see an int event time."""
    raw = json.dumps({**CLICK, "ts": 1.7e12, "quantity": 2.0}).encode()
    click = parse_user_event("clicks", b"u1", raw, JSON)
    assert (click.ts, click.quantity) == (1_700_000_000_000, 2)
    assert type(click.ts) is int and type(click.quantity) is int


def test_a_reason_quoting_hostile_input_stays_short_and_encodable() -> None:
    with pytest.raises(BadMessage) as caught:
        parse_user_event("clicks", b"k" * 1_000_000, encode_value(CLICK))
    assert caught.value.code == "key_mismatch" and len(caught.value.message) < 400
    error = BadMessage("bad_json", "\ud800" * 5_000, field="\udfff")
    assert len(error.message) <= 2048 and error.as_dict()["field"] == "\\udfff"
    encode_value(error.as_dict())


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


def test_an_event_from_well_after_its_record_was_produced_is_refused() -> None:
    from streams.ingest import MAX_EVENT_AHEAD_MS

    value = encode_value({**CLICK, "ts": 1_700_000_000_000})
    assert parse_user_event("clicks", b"u1", value, record_ts=1_700_000_000_000 - MAX_EVENT_AHEAD_MS).ts
    with pytest.raises(BadMessage) as caught:
        parse_user_event("clicks", b"u1", value, record_ts=1_700_000_000_000 - MAX_EVENT_AHEAD_MS - 1)
    assert (caught.value.code, caught.value.field) == ("ts_in_future", "ts")
    assert parse_user_event("clicks", b"u1", value).ts  # no record timestamp known: not judged


_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**64), 2**65)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(alphabet=st.characters(codec=None), max_size=40)
    | st.binary(max_size=40)
)
_values = st.recursive(
    _scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.tuples(inner, inner)
        | st.dictionaries(st.text(max_size=8) | st.integers(), inner, max_size=4)
    ),
    max_leaves=30,
)


@settings(deadline=None, max_examples=300)
@given(value=st.dictionaries(st.text(max_size=8), _values, max_size=6))
def test_values_are_encoded_as_msgpack_encodes_them(value: dict[str, object]) -> None:
    """The same bytes as msgpack's `packb(use_bin_type=True)`, or the same kind of error: outputs and
    stored values do not depend on which library wrote them."""
    try:
        expected: bytes | str = msgpack.packb(value, use_bin_type=True)
    except Exception as exc:  # a lone surrogate, an int beyond 64 bits
        expected = type(exc).__name__
    try:
        encoded: bytes | str = encode_value(value)
    except Exception as exc:
        encoded = type(exc).__name__
    assert encoded == expected
