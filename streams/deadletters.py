"""The dead-letter record: the original bytes, why they were refused, and where they came from."""

from __future__ import annotations

from typing import Any

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
) -> dict[str, Any]:
    return {
        "schema_version": SCHEMA_VERSION,
        "source_topic": source_topic,
        "partition": partition,
        "offset": offset,
        "key": key,
        "value": value,
        "error": error.as_dict(),
        "ts": ts,
    }
