"""Ingress shared by every adapter: bytes -> a validated, typed event, or a BadMessage naming why."""

from __future__ import annotations

import reprlib

from streams.codec import MAX_VALUE_BYTES, Headers, decode_key, decode_value
from streams.core.catalog import CatalogItem
from streams.core.events import CLICKS, ORDERS, Click, Order, UserEvent
from streams.errors import SchemaViolation, TimestampTooFarAhead
from streams.schemas import validate

_KINDS = {CLICKS: ("click", Click), ORDERS: ("order", Order)}
_short = reprlib.Repr()
_short.maxstring = 140  # a hostile key may be a megabyte long
_quote = _short.repr

# An event may claim to be at most this far ahead of its Kafka record's timestamp (when it was
# produced). Further ahead is a broken clock or garbage: accepted, it would move its partition's
# event time forward and fire every pending timer there. Live and offline judge alike: a recorded
# log keeps each record's timestamp.
MAX_EVENT_AHEAD_MS = 60 * 60 * 1000


def parse_user_event(
    logical_topic: str,
    key: bytes | None,
    value: bytes | None,
    headers: Headers = None,
    max_bytes: int = MAX_VALUE_BYTES,
    record_ts: int | None = None,
) -> UserEvent:
    kind, event_type = _KINDS[logical_topic]
    decoded = decode_value(value, headers, max_bytes)
    validate(kind, decoded)
    user_key = decode_key(key)
    # One worker owns a user only if every event of the user is keyed (so partitioned) by user_id.
    if user_key != decoded["user_id"]:
        raise SchemaViolation(
            "key_mismatch",
            f"{kind}: message key {_quote(user_key)} must equal user_id {_quote(decoded['user_id'])}",
            field="key",
        )
    if record_ts is not None and decoded["ts"] > record_ts + MAX_EVENT_AHEAD_MS:
        raise TimestampTooFarAhead(
            "ts_in_future",
            f"{kind}: ts {decoded['ts']} is more than {MAX_EVENT_AHEAD_MS} ms after the record's "
            f"timestamp {record_ts}",
            field="ts",
        )
    return event_type.from_dict(decoded)


def parse_catalog_item(
    value: bytes | None, headers: Headers = None, max_bytes: int = MAX_VALUE_BYTES
) -> CatalogItem:
    """A catalog update, or BadMessage. Live and offline both read the catalog through this, so a
    malformed entry is ignored by both alike."""
    return CatalogItem.from_dict(validate("catalog_item", decode_value(value, headers, max_bytes)))
