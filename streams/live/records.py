"""An input record as the live path carries it: what a librdkafka message says, read once."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from confluent_kafka import TIMESTAMP_NOT_AVAILABLE, KafkaError, Message

log = logging.getLogger(__name__)


def readable(messages: Iterable[Message], source: str) -> Iterator[Message]:
    """The messages that carry a record: a partition's end is skipped, any other error logged."""
    for message in messages:
        error = message.error()
        if error is None:
            yield message
        elif error.code() != KafkaError._PARTITION_EOF:
            log.warning("%s: %s", source, error.str())


@dataclass(frozen=True, slots=True)
class InputRecord:
    topic: str  # physical topic name
    partition: int
    offset: int
    timestamp_ms: int | None  # the record's CreateTime or LogAppendTime
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...] = ()
    read_at: float = 0.0  # monotonic seconds when the consumer handed it out (event-to-output latency)

    @property
    def message(self) -> InputRecord:
        """The sequencer's envelope protocol (streams.live.sequencer.Envelope): the record itself."""
        return self

    @property
    def timestamp(self) -> float | None:
        """Seconds, as the sequencer orders by (exact milliseconds stay in `timestamp_ms`)."""
        return None if self.timestamp_ms is None else self.timestamp_ms / 1000

    @classmethod
    def from_message(cls, message: Message) -> InputRecord:
        kind, ts = message.timestamp()
        return cls(
            message.topic(),
            message.partition(),
            message.offset(),
            None if kind == TIMESTAMP_NOT_AVAILABLE else ts,
            message.key(),
            message.value(),
            tuple(message.headers() or ()),
            time.monotonic(),
        )
