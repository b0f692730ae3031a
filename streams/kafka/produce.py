"""Play an event log into topics: keys, headers, timestamps and per-key order preserved."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from kafka import KafkaProducer

from streams.codec import REPLAY_HEADER, encode_key
from streams.config import INPUT_TOPICS, Settings
from streams.kafka.clients import client_options
from streams.logs import LogRecord
from streams.partitioning import partition_for


@dataclass
class ReplaySummary:
    sent: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0

    @property
    def total(self) -> int:
        return sum(self.sent.values())


def make_producer(settings: Settings) -> KafkaProducer:
    # Idempotence (kafka-python's default) keeps per-partition order and no duplicates across retries.
    return KafkaProducer(
        **client_options(settings),
        client_id=f"{settings.app_id}-replay",
        acks="all",
        linger_ms=5,
        batch_size=256 * 1024,
        max_request_size=4 * 1024 * 1024,
    )


def replay_log(
    records: Iterable[LogRecord],
    settings: Settings,
    speed: float | None = None,
    rate: float | None = None,
    on_sent: Callable[[LogRecord], None] | None = None,
    producer: KafkaProducer | None = None,
    mark_replay: bool = True,
) -> ReplaySummary:
    """Send every record in order. `speed`: event-time pacing factor (2.0 = twice real time);
    `rate`: at most this many records per second; neither: as fast as possible. `mark_replay` adds
    the `streams-replay` header, so whatever the worker derives from these events says replay=true
    and no campaign fires from a backfill."""
    own_producer = producer is None
    producer = producer or make_producer(settings)
    order = CrossTopicOrder(producer, settings)
    summary = ReplaySummary()
    started = time.monotonic()
    first_ts: int | None = None
    marker = [(REPLAY_HEADER, b"1")] if mark_replay else []
    try:
        for record in records:
            due = None
            if speed:
                first_ts = record.ts if first_ts is None else first_ts
                due = started + (record.ts - first_ts) / 1000.0 / speed
            elif rate:
                due = started + summary.total / rate
            if due is not None and (delay := due - time.monotonic()) > 0:
                time.sleep(delay)
            order.before(record)
            future = producer.send(
                settings.physical(record.topic),
                key=encode_key(record.key),
                value=record.wire_value(),
                headers=(record.wire_headers() + (marker if REPLAY_HEADER not in record.headers else []))
                or None,
                timestamp_ms=record.ts,
            )
            order.sent(record, future)
            summary.sent[record.topic] += 1
            if on_sent is not None:
                on_sent(record)
        producer.flush()
    finally:
        if own_producer:
            producer.close()
    summary.seconds = time.monotonic() - started
    return summary


class CrossTopicOrder:
    """Writes a partition's clicks and orders in log order, across the two topics.

    Kafka orders a topic-partition, not a pair of them: a click batch can reach the broker before
    an order sent ahead of it. The worker merges the two by event time from what the broker has,
    so when the log switches topic on a partition, the previous topic's last send is awaited first.
    Orders are rare, so this costs a few round trips, and a replay then gives the worker exactly the
    offline engine's order even while it runs.
    """

    def __init__(self, producer: KafkaProducer, settings: Settings) -> None:
        self.producer = producer
        self.settings = settings
        self._last: dict[int, tuple[str, Any]] = {}  # partition -> (topic, future of its last send)
        self._partitions: dict[str, int] = {}

    def _partition(self, record: LogRecord) -> int:
        topic = self.settings.physical(record.topic)
        if topic not in self._partitions:
            known = self.producer.partitions_for(topic)
            self._partitions[topic] = len(known) if known else self.settings.partitions
        return partition_for(record.key, self._partitions[topic])

    def before(self, record: LogRecord) -> None:
        if record.topic not in INPUT_TOPICS:
            return
        last = self._last.get(self._partition(record))
        if last is not None and last[0] != record.topic:
            last[1].get(timeout=60)

    def sent(self, record: LogRecord, future: Any) -> None:
        if record.topic in INPUT_TOPICS:
            self._last[self._partition(record)] = (record.topic, future)
