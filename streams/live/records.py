"""An input record as the live path carries it: what a librdkafka message says, read once."""

from __future__ import annotations

from dataclasses import dataclass

from confluent_kafka import TIMESTAMP_NOT_AVAILABLE, Message


@dataclass(frozen=True, slots=True)
class InputRecord:
    topic: str  # physical topic name
    partition: int
    offset: int
    timestamp_ms: int | None  # the record's CreateTime or LogAppendTime
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...] = ()

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
        )
