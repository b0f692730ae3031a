"""Record topics into an event log that `streams replay` plays back unchanged."""

from __future__ import annotations

import heapq
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from kafka import KafkaConsumer, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord

from streams.codec import DecodeError, decode_value, encode_value, is_json
from streams.config import Settings
from streams.kafka.clients import client_options
from streams.logs import LogRecord


@dataclass(frozen=True)
class RecordOptions:
    topics: tuple[str, ...]
    from_beginning: bool = False
    until_idle: float | None = None  # stop after this many seconds without a message; None = until stopped


def to_log_record(message: ConsumerRecord, settings: Settings) -> LogRecord:
    """Keep the decoded map when it re-encodes to the very same bytes, else the bytes themselves:
    either way a replay sends exactly what was recorded."""
    headers = {k: v.decode("utf-8", errors="replace") for k, v in (message.headers or [])}
    topic = settings.logical(message.topic) or message.topic
    key = None if message.key is None else message.key.decode("utf-8", errors="replace")
    raw = message.value
    value = None
    try:
        if raw is not None:
            value = decode_value(raw, message.headers)
    except DecodeError:
        value = None
    if value is not None:
        encoded = (
            json.dumps(value, separators=(",", ":")).encode()
            if is_json(message.headers)
            else encode_value(value)
        )
        if encoded != raw:
            value = None
    if value is not None:
        return LogRecord(topic, key, message.timestamp, value=value, headers=headers)
    return LogRecord(topic, key, message.timestamp, value_bytes=raw or b"", headers=headers)


def consume_topics(
    options: RecordOptions, settings: Settings, should_stop: Callable[[], bool] = lambda: False
) -> Iterator[list[ConsumerRecord]]:
    """Yield polled batches from every partition of the topics (no consumer group: recording must
    not steal partitions from a running worker)."""
    consumer = KafkaConsumer(
        **client_options(settings),
        client_id=f"{settings.app_id}-record",
        enable_auto_commit=False,
        group_id=None,
    )
    try:
        partitions = []
        for topic in options.topics:
            physical = settings.physical(topic)
            ids = consumer.partitions_for_topic(physical)
            if not ids:
                raise ValueError(f"topic {physical!r} does not exist")
            partitions += [TopicPartition(physical, p) for p in sorted(ids)]
        consumer.assign(partitions)
        if options.from_beginning:
            consumer.seek_to_beginning(*partitions)
        else:
            consumer.seek_to_end(*partitions)
        last_message = time.monotonic()
        while not should_stop():
            polled = consumer.poll(timeout_ms=200, max_records=5000)
            batch = [m for messages in polled.values() for m in messages]
            if batch:
                last_message = time.monotonic()
                yield batch
            elif options.until_idle is not None and time.monotonic() - last_message >= options.until_idle:
                return
    finally:
        consumer.close()


def merge_by_time(messages: list[ConsumerRecord]) -> list[ConsumerRecord]:
    """One sequence ordered by timestamp that keeps every partition's own order intact."""
    by_partition: dict[tuple[str, int], list[ConsumerRecord]] = {}
    for message in messages:
        by_partition.setdefault((message.topic, message.partition), []).append(message)
    runs = [sorted(run, key=lambda m: m.offset) for _, run in sorted(by_partition.items())]
    return list(heapq.merge(*runs, key=lambda m: m.timestamp))
