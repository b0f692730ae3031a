"""The dead-letter record: the original bytes, why they were refused, and where they came from."""

from __future__ import annotations

from typing import Any

from streams.codec import MAX_VALUE_BYTES
from streams.errors import BadMessage
from streams.schemas import SCHEMA_VERSION


def dead_letter_value(
    source_topic: str,
    partition: int,
    offset: int,
    key: bytes | None,
    value: bytes | None,
    error: BadMessage,
    ts: int,
    max_bytes: int = MAX_VALUE_BYTES,
) -> dict[str, Any]:
    """Key and value are kept byte-exact up to `max_bytes` together. Beyond that (an oversized
    record) only their beginnings are kept and `truncated` gives the original sizes: the dead letter
    of a record near the broker's size limit must still fit under it."""
    out: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "source_topic": source_topic,
        "partition": partition,
        "offset": offset,
        "key": key,
        "value": value,
        "error": error.as_dict(),
        "ts": ts,
    }
    key_bytes, value_bytes = len(key or b""), len(value or b"")
    if key_bytes + value_bytes > max_bytes:
        kept_key = None if key is None else key[:max_bytes]
        out["key"] = kept_key
        out["value"] = None if value is None else value[: max_bytes - len(kept_key or b"")]
        out["truncated"] = {"key_bytes": key_bytes, "value_bytes": value_bytes}
    return out
