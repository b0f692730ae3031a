"""Drive a pipeline with generated clicks and time each one from produce to its output.

Latency is measured end to end, the way a frontend sees it: from the moment an event is handed to
the producer to the moment the output it caused is consumed. Both ends run in this process, so
one monotonic clock serves both.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from confluent_kafka import Consumer, TopicPartition
from kafka import KafkaProducer

from streams.codec import decode_value, encode_key
from streams.generate import TrafficConfig, generate_traffic
from streams.logs import LogRecord

CauseOf = Callable[[bytes], str | None]  # output message value -> the event id that caused it


def clicks(users: int, items: int, events: int, seed: int) -> list[LogRecord]:
    """Generated clicks and orders (no catalog), in event-time order."""
    config = TrafficConfig(users=users, items=items, events=events, seed=seed)
    return [r for r in generate_traffic(config) if r.topic in ("clicks", "orders")]


def recommendation_cause(raw: bytes) -> str | None:
    value = decode_value(raw)
    return value.get("cause_event_id") if isinstance(value, dict) else None


@dataclass
class LoadResult:
    offered_rate: float | None  # None: as fast as possible (a backlog)
    sent: int = 0
    received: int = 0
    seconds: float = 0.0  # first send to last output
    latencies_ms: list[float] = field(default_factory=list)
    runs: list[float] | None = None  # a median of several: every run's throughput

    @property
    def throughput(self) -> float:
        return self.received / self.seconds if self.seconds else 0.0

    def percentile(self, q: float) -> float:
        return float(np.percentile(self.latencies_ms, q)) if self.latencies_ms else float("nan")

    def as_dict(self) -> dict[str, Any]:
        return {
            "offered_rate": self.offered_rate,
            "sent": self.sent,
            "received": self.received,
            "throughput": round(self.throughput, 1),
            "p50_ms": round(self.percentile(50), 2),
            "p95_ms": round(self.percentile(95), 2),
            "p99_ms": round(self.percentile(99), 2),
            **({"runs": self.runs} if self.runs is not None else {}),
        }


class OutputWatcher:
    """Consumes an output topic from its current end and notes when each cause's output arrives.

    On librdkafka: its fetches run on librdkafka's threads, so the watcher's own cost (it shares this
    process with the paced producer) adds the least to the latencies it measures."""

    def __init__(self, client: Mapping[str, Any], topic: str, cause_of: CauseOf) -> None:
        """`client`: `streams.kafka.clients.librdkafka_config`."""
        self.consumer = Consumer(
            {
                **client,
                "group.id": "streams-bench-watcher",
                "enable.auto.commit": False,
                "fetch.wait.max.ms": 10,
            }
        )
        metadata = self.consumer.list_topics(topic, timeout=30).topics[topic]
        ends = []
        for p in sorted(metadata.partitions):  # resolved now, before anything is produced
            _, high = self.consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=30, cached=False)
            ends.append(TopicPartition(topic, p, high))
        self.consumer.assign(ends)
        self.cause_of = cause_of
        self.arrived: dict[str, float] = {}  # cause -> when its first output arrived
        self.copies: Counter[str] = Counter()  # cause -> outputs seen (more than 1: re-emitted)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> OutputWatcher:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self.consumer.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            # librdkafka's consume waits for as many as asked or the timeout: wait for one only.
            messages = self.consumer.consume(1000, 0) or self.consumer.consume(1, 0.1)
            now = time.monotonic()
            for message in messages:
                if message.error() is not None:
                    continue  # a partition's end, or a transient error librdkafka retries
                cause = self.cause_of(message.value())
                if cause is not None:
                    self.arrived.setdefault(cause, now)
                    self.copies[cause] += 1


def paced(records: list[LogRecord], rate: float | None) -> Iterator[tuple[int, LogRecord]]:
    started = time.monotonic()
    for n, record in enumerate(records):
        if rate:
            delay = started + n / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        yield n, record


def drive(
    records: list[LogRecord],
    producer: KafkaProducer,
    topic_of: Callable[[str], str],
    watcher: OutputWatcher,
    rate: float | None,
    drain_timeout: float = 120.0,
) -> LoadResult:
    """Send `records` at `rate` (None: at once) and wait for every output (or `drain_timeout`)."""
    sent_at: dict[str, float] = {}
    result = LoadResult(rate)
    first = time.monotonic()
    for _, record in paced(records, rate):
        assert record.value is not None
        sent_at[record.value["event_id"]] = time.monotonic()
        producer.send(
            topic_of(record.topic),
            key=encode_key(record.key),
            value=record.wire_value(),
            timestamp_ms=record.ts,
        )
        result.sent += 1
    producer.flush()
    deadline = time.monotonic() + drain_timeout
    while time.monotonic() < deadline and len(watcher.arrived.keys() & sent_at.keys()) < len(sent_at):
        time.sleep(0.2)
    arrived = {e: t for e, t in watcher.arrived.items() if e in sent_at}
    result.received = len(arrived)
    result.seconds = (max(arrived.values()) - first) if arrived else 0.0
    result.latencies_ms = [1000.0 * (t - sent_at[e]) for e, t in arrived.items()]
    return result
