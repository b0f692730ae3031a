"""Look at a running system from outside: a topic's messages decoded as they arrive, and how far the
worker group is behind its input (committed offsets against the log ends)."""

from __future__ import annotations

import base64
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, OFFSET_END, OFFSET_INVALID, Consumer, TopicPartition

from streams.codec import decode_key, decode_value
from streams.config import INPUT_TOPICS, Settings
from streams.errors import BadMessage
from streams.kafka.clients import librdkafka_config
from streams.live.records import readable

METADATA_TIMEOUT_SECONDS = 10.0
SHOWN_VALUE_BYTES = 16 * 1024 * 1024


def tail(
    settings: Settings,
    topic: str,
    from_beginning: bool = False,
    idle_seconds: float | None = None,
) -> Iterator[dict[str, Any]]:
    """Every message written to `topic` (a logical name, or a physical one) from now on (or from the
    beginning), decoded, until `idle_seconds` pass without one (None: forever). Undecodable values
    are shown with the reason, never skipped."""
    physical = settings.physical(topic)
    consumer = Consumer(
        {
            **librdkafka_config(settings),
            # Never joins the group or commits: partitions are assigned by hand.
            "group.id": f"{settings.app_id}-tail-{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False,
        }
    )
    try:
        metadata = consumer.list_topics(physical, timeout=METADATA_TIMEOUT_SECONDS).topics[physical]
        if metadata.error is not None:
            raise ValueError(f"topic {physical!r}: {metadata.error.str()}")
        start = OFFSET_BEGINNING if from_beginning else OFFSET_END
        consumer.assign([TopicPartition(physical, p, start) for p in sorted(metadata.partitions)])
        last = time.monotonic()
        while idle_seconds is None or time.monotonic() - last < idle_seconds:
            for message in readable(consumer.consume(100, 0.2), "tail"):
                last = time.monotonic()
                yield decoded(settings, message)
    finally:
        consumer.close()


def decoded(settings: Settings, message: Any) -> dict[str, Any]:
    headers = tuple(message.headers() or ())
    out: dict[str, Any] = {
        "topic": settings.logical(message.topic()) or message.topic(),
        "partition": message.partition(),
        "offset": message.offset(),
        "ts": message.timestamp()[1],
        "key": _text_or_b64(message.key()),
    }
    if headers:
        out["headers"] = {name: _text_or_b64(value) for name, value in headers}
    # Larger than the worker accepts is shown too: an operator may want to see what it refused.
    limit = max(settings.max_message_bytes, SHOWN_VALUE_BYTES)
    try:
        out["value"] = _printable(decode_value(message.value(), headers, limit))
    except BadMessage as exc:
        out["undecodable"] = {"code": exc.code, "message": str(exc)}
        out["value_b64"] = base64.b64encode(message.value() or b"").decode()
    return out


def _text_or_b64(raw: bytes | None) -> str | None:
    if raw is None:
        return None
    try:
        return decode_key(raw)
    except (UnicodeDecodeError, BadMessage):
        return "base64:" + base64.b64encode(raw).decode()


def _printable(value: Any) -> Any:
    """JSON-ready: bytes (a dead letter's original value) become text or `base64:...`."""
    if isinstance(value, bytes):
        return _text_or_b64(value)
    if isinstance(value, dict):
        return {str(k): _printable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_printable(v) for v in value]
    return value


@dataclass(frozen=True, slots=True)
class PartitionLag:
    topic: str  # logical
    partition: int
    committed: int | None  # the group's next offset to process; None: nothing committed yet
    start: int  # the oldest offset retention kept: where a group without a commit begins
    end: int  # the log end

    @property
    def lag(self) -> int:
        begin = self.committed if self.committed is not None else self.start
        return max(0, self.end - begin)


def group_lag(settings: Settings) -> list[PartitionLag]:
    """The worker group's (`app_id`) position in every input partition, read without joining it."""
    consumer = Consumer(
        {**librdkafka_config(settings), "group.id": settings.app_id, "enable.auto.commit": False}
    )
    try:
        partitions = []
        for logical in INPUT_TOPICS:
            physical = settings.topic(logical)
            metadata = consumer.list_topics(physical, timeout=METADATA_TIMEOUT_SECONDS).topics[physical]
            if metadata.error is not None:
                raise ValueError(f"topic {physical!r}: {metadata.error.str()}")
            partitions += [TopicPartition(physical, p) for p in sorted(metadata.partitions)]
        committed = consumer.committed(partitions, timeout=METADATA_TIMEOUT_SECONDS)
        lags = []
        for tp in committed:
            start, end = consumer.get_watermark_offsets(tp, timeout=METADATA_TIMEOUT_SECONDS)
            offset = None if tp.offset == OFFSET_INVALID else tp.offset
            lags.append(
                PartitionLag(settings.logical(tp.topic) or tp.topic, tp.partition, offset, start, end)
            )
        return lags
    finally:
        consumer.close()
