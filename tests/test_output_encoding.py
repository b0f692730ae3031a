"""Output messages: msgpack or JSON values, CloudEvents headers, all a pure function of the output."""

from __future__ import annotations

import json
from typing import Any

import pytest

from streams.codec import decode_value
from streams.core.config import RulesConfig
from streams.core.processor import Processor
from streams.core.recommend import TrendingOnly
from streams.generate import TrafficConfig, generate_traffic
from streams.logs import LogRecord
from streams.offline.engine import OfflineEngine
from streams.output_encoding import CE_ATTRIBUTES, OUTPUT_SCHEMAS, encode_output, output_format, rfc3339
from streams.schemas import validate

SCHEMA_OF = {topic: kind for topic, kind in OUTPUT_SCHEMAS.items() if topic != "demand-forecasts"}


@pytest.fixture(scope="module")
def outputs() -> list[tuple[str, dict[str, Any]]]:
    """Every kind of output, from generated traffic with checkouts and one undecodable click."""
    records = list(
        generate_traffic(TrafficConfig(users=60, items=200, events=4_000, seed=4, checkout_rate=0.5))
    )
    records.append(LogRecord("clicks", "u-bad", records[-1].ts, value_bytes=b"\xc1 not an event"))
    processor = Processor(TrendingOnly(), RulesConfig(), catalog={})
    result = OfflineEngine(processor, partitions=4).run(records)
    out = [(o.topic, o.value) for o in result.outputs]
    out += [("dead-letters", letter) for letter in result.dead_letters]
    assert {topic for topic, _ in out} == set(SCHEMA_OF)
    return out


def test_json_outputs_validate_against_their_schemas(outputs: list[tuple[str, dict[str, Any]]]) -> None:
    for topic, value in outputs:
        raw, headers = encode_output(topic, value, "json")
        assert dict(headers)["content-type"] == b"application/json"
        assert raw.isascii()
        decoded = json.loads(raw)
        validate(SCHEMA_OF[topic], decoded)
        if topic == "dead-letters":
            assert decoded["value"] is None or isinstance(decoded["value"], str)  # base64
        else:
            assert decoded == value
        assert decode_value(raw) == decoded  # read back as JSON by its first byte alone


def test_both_formats_carry_the_same_cloudevents_headers(outputs: list[tuple[str, dict[str, Any]]]) -> None:
    seen_ids: set[bytes] = set()
    for topic, value in outputs:
        packed, packed_headers = encode_output(topic, value, "msgpack")
        _, json_headers = encode_output(topic, value, "json")
        assert decode_value(packed) == value
        assert [name for name, _ in packed_headers] == list(CE_ATTRIBUTES)  # msgpack: no content-type
        assert json_headers[1:] == packed_headers
        attributes = dict(packed_headers)
        assert attributes["ce_specversion"] == b"1.0"
        assert attributes["ce_source"] == f"/streams/{topic}".encode()
        assert attributes["ce_type"] == f"streams.{SCHEMA_OF[topic]}.v1".encode()
        assert attributes["ce_time"] == rfc3339(value["ts"]).encode()
        seen_ids.add(attributes["ce_id"])
        assert encode_output(topic, value, "msgpack") == (packed, packed_headers)  # deterministic
    assert len(seen_ids) == len(outputs)  # every output its own id


def test_times_are_rfc3339_utc_with_milliseconds() -> None:
    assert rfc3339(0) == "1970-01-01T00:00:00.000Z"
    assert rfc3339(1_700_000_000_007) == "2023-11-14T22:13:20.007Z"
    assert rfc3339(1_709_251_199_999) == "2024-02-29T23:59:59.999Z"


def test_an_unknown_output_format_is_named() -> None:
    assert output_format("json") == "json"
    with pytest.raises(ValueError, match="known: msgpack, json"):
        output_format("avro")
