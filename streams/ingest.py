"""Ingress shared by every adapter: bytes -> a validated, typed event, or a BadMessage naming why."""

from __future__ import annotations

from streams.codec import Headers, decode_key, decode_value
from streams.core.events import CLICKS, ORDERS, Click, Order, UserEvent
from streams.errors import SchemaViolation
from streams.schemas import validate

_KINDS = {CLICKS: ("click", Click), ORDERS: ("order", Order)}


def parse_user_event(
    logical_topic: str, key: bytes | None, value: bytes | None, headers: Headers = None
) -> UserEvent:
    kind, event_type = _KINDS[logical_topic]
    decoded = decode_value(value, headers)
    validate(kind, decoded)
    user_key = decode_key(key)
    # One worker owns a user only if every event of the user is keyed (so partitioned) by user_id.
    if user_key != decoded["user_id"]:
        raise SchemaViolation(
            "key_mismatch",
            f"{kind}: message key {user_key!r} must equal user_id {decoded['user_id']!r}",
            field="key",
        )
    return event_type.from_dict(decoded)
