"""One event typed on the command line, made into a record the worker accepts: `event_id` and `ts`
filled in when missing, keyed as its topic is partitioned, validated by the same ingress as the
worker's (so a mistake is named here rather than found later in dead-letters)."""

from __future__ import annotations

import json
import uuid
from typing import Any

from streams.codec import encode_value
from streams.core.events import CLICKS, ORDERS
from streams.ingest import parse_catalog_item, parse_user_event
from streams.logs import LogRecord

CATALOG = "catalog"
KEY_FIELD = {CLICKS: "user_id", ORDERS: "user_id", CATALOG: "item_id"}


def event_record(
    topic: str, text: str, now_ms: int, key: str | None = None, validate: bool = True
) -> LogRecord:
    """`text`: the event as a JSON object. `validate=False` sends it as given (to exercise the
    dead-letter path); the key then defaults the same way when the field is there."""
    try:
        value: Any = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"the event is not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise ValueError(f"the event must be a JSON object, got {type(value).__name__}")
    if topic not in KEY_FIELD:
        raise ValueError(f"send writes to {', '.join(KEY_FIELD)}; not {topic!r}")
    if validate:
        value.setdefault("ts", now_ms)
        if topic != CATALOG:
            value.setdefault("event_id", f"cli-{uuid.uuid4().hex}")
    key = key if key is not None else _text(value.get(KEY_FIELD[topic]))
    if validate:
        raw = encode_value(value)
        encoded_key = key.encode() if key is not None else None
        if topic == CATALOG:
            parse_catalog_item(raw)
        else:
            parse_user_event(topic, encoded_key, raw, record_ts=now_ms)
    return LogRecord(topic=topic, key=key, ts=now_ms, value=value)


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None
