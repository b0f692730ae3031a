from __future__ import annotations

import json

import pytest

from streams.codec import CONTENT_TYPE, encode_value
from streams.deliver.connector import decode_output, refusal_error
from streams.deliver.formats import SEGMENTS, TRIGGERS
from streams.deliver.sender import Answer
from streams.errors import BadMessage
from tests.deliver.test_formats import ENRICHED_ITEM, SEGMENT_CHANGE, trigger


def test_msgpack_and_json_outputs_decode_to_the_same_value() -> None:
    value = trigger(items=[ENRICHED_ITEM], value=19.0, currency="EUR", link="https://shop.example/cart")
    assert decode_output(TRIGGERS, encode_value(value), None) == value
    # JSON is recognised by its first byte, with or without (or even with a wrong) content-type.
    raw = json.dumps(value).encode()
    assert decode_output(TRIGGERS, raw, None) == value
    assert decode_output(TRIGGERS, raw, [(CONTENT_TYPE, b"application/msgpack")]) == value
    assert decode_output(SEGMENTS, encode_value(SEGMENT_CHANGE), None) == SEGMENT_CHANGE


@pytest.mark.parametrize(
    ("source", "raw", "code"),
    [
        (TRIGGERS, b"\xc1", "bad_msgpack"),
        (TRIGGERS, b"{not json", "bad_json"),
        (TRIGGERS, encode_value({"trigger_id": "t-1"}), "missing_field"),
        (SEGMENTS, encode_value(trigger()), "missing_field"),
    ],
)
def test_what_is_no_output_is_refused_with_a_code(source: str, raw: bytes, code: str) -> None:
    with pytest.raises(BadMessage) as refused:
        decode_output(source, raw, None)
    assert refused.value.code == code


def test_a_refusal_names_the_status_and_quotes_the_body() -> None:
    error = refusal_error(Answer(422, body='{"errors": ["unknown metric"]}'))
    assert error.code == "http_422"
    assert error.message == 'receiver answered 422: {"errors": ["unknown metric"]}'
