"""How an output travels: its value encoded (msgpack, or JSON on request) and CloudEvents headers.

Every output message carries CloudEvents binary-mode headers (`ce_specversion`, `ce_id`,
`ce_source`, `ce_type`, `ce_time`), so off-the-shelf sinks and UIs can route and show it without
knowing our schemas. Both the bytes and the headers are a pure function of the logical topic and the
value: `ce_id` is the output's own deterministic id and `ce_time` its event time, never the wall
clock, so a worker and an offline replay of the same log write the same messages byte for byte.
"""

from __future__ import annotations

import base64
import functools
import json
import time
from typing import Any, Literal, get_args

from streams.codec import CONTENT_TYPE, JSON_CONTENT_TYPE, encode_value
from streams.core.events import SCHEMA_VERSION
from streams.core.ids import stable_id

OutputFormat = Literal["msgpack", "json"]
OUTPUT_FORMATS: tuple[str, ...] = get_args(OutputFormat)
DEFAULT_OUTPUT_FORMAT: OutputFormat = "msgpack"
CE_SPECVERSION = "1.0"
DEAD_LETTERS = "dead-letters"

# logical topic -> (schema kind, the value's field holding its deterministic id, if it has one)
_OUTPUTS: dict[str, tuple[str, str | None]] = {
    "recommendations": ("recommendation", "rec_id"),
    "promotion-triggers": ("promotion_trigger", "trigger_id"),
    "audience-segments": ("audience_segment", "event_id"),
    "demand": ("demand", "demand_id"),
    "demand-forecasts": ("demand_forecast", "forecast_id"),
    DEAD_LETTERS: ("dead_letter", None),
}
OUTPUT_SCHEMAS = {topic: kind for topic, (kind, _) in _OUTPUTS.items()}  # logical topic -> schema kind
CE_ATTRIBUTES = ("ce_specversion", "ce_id", "ce_source", "ce_type", "ce_time")  # header names, in order
_CE_SPECVERSION, _CE_ID, _CE_SOURCE, _CE_TYPE, _CE_TIME = CE_ATTRIBUTES
_SPECVERSION = CE_SPECVERSION.encode()
# logical topic -> (ce_source, ce_type): the same for every message of a topic
_STATIC_ATTRIBUTES = {
    topic: (f"/streams/{topic}".encode(), f"streams.{kind}.v{SCHEMA_VERSION}".encode())
    for topic, kind in OUTPUT_SCHEMAS.items()
}

Headers = list[tuple[str, bytes]]


def output_format(name: str) -> OutputFormat:
    """`name` as an output format, or ValueError naming the known ones."""
    if name not in OUTPUT_FORMATS:
        raise ValueError(f"unknown output format {name!r}; known: {', '.join(OUTPUT_FORMATS)}")
    return name  # type: ignore[return-value]


def encode_output(topic: str, value: dict[str, Any], fmt: OutputFormat) -> tuple[bytes, Headers]:
    """The message value and headers of an output for the logical `topic`."""
    headers = cloudevent_headers(topic, value)
    if fmt == "json":
        return encode_json(value), [(CONTENT_TYPE, JSON_CONTENT_TYPE.encode()), *headers]
    return encode_value(value), headers


def encode_json(value: dict[str, Any]) -> bytes:
    """Compact ASCII JSON in the value's own key order (as `streams record` and event logs write
    JSON); bytes (a dead letter's key and value) as base64, as `schemas/dead_letter.v1.json` says."""
    return json.dumps(value, separators=(",", ":"), default=_bytes_as_base64).encode()


def cloudevent_headers(topic: str, value: dict[str, Any]) -> Headers:
    source, kind = _STATIC_ATTRIBUTES[topic]
    return [
        (_CE_SPECVERSION, _SPECVERSION),
        (_CE_ID, output_id(topic, value).encode()),
        (_CE_SOURCE, source),
        (_CE_TYPE, kind),
        (_CE_TIME, rfc3339(value["ts"]).encode()),
    ]


def output_id(topic: str, value: dict[str, Any]) -> str:
    """The output's deterministic id. A dead letter has no id field: it is named by where its input
    was, so a re-delivered input gives the same dead letter with the same id."""
    id_field = _OUTPUTS[topic][1]
    if id_field is None:
        return stable_id("d", value["source_topic"], value["partition"], value["offset"])
    return str(value[id_field])


def rfc3339(ts_ms: int) -> str:
    """Epoch milliseconds as an RFC 3339 UTC time with milliseconds (`2023-11-14T22:13:20.000Z`).
    `gmtime` of a given time is a calendar conversion (no clock is read), and twice as fast as
    datetime's: this runs once per output message."""
    seconds, millis = divmod(int(ts_ms), 1000)
    return _utc_second(seconds) + f".{millis:03d}Z"


@functools.lru_cache(maxsize=4096)
def _utc_second(seconds: int) -> str:
    """A batch's outputs have a few distinct seconds between them: each is converted once."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))


def _bytes_as_base64(obj: object) -> str:
    if isinstance(obj, bytes):
        return base64.b64encode(obj).decode()
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")
