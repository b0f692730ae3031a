"""The event collector behind `POST /events`: a browser's batch of clicks and orders, judged one by
one by the same ingest path the worker uses, the valid ones written keyed by `user_id` (Kafka's
murmur2 partitioner, so each lands where the worker that owns the user reads), the refused ones
written to `dead-letters`, and an answer per event.

A batch is `{"clicks": [...], "orders": [...]}`; the answer lists, in the same order, per event
`{"status": "accepted", "event_id", "partition"}` or `{"status": "refused", "code", "message",
"field"}` with the dead-letter code. An event is accepted only once the broker has acknowledged it.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import KafkaError, Message, Producer

from streams.codec import CONTENT_TYPE, JSON_CONTENT_TYPE, encode_key, encode_value
from streams.config import INPUT_TOPICS, Settings
from streams.deadletters import dead_letter_value
from streams.errors import BadMessage
from streams.ingest import parse_user_event
from streams.output_encoding import DEAD_LETTERS, encode_output
from streams.partitioning import partition_for

MAX_BATCH_EVENTS = 500
MAX_BATCH_BYTES = 1024 * 1024  # aiohttp's own request limit; 500 events of a few hundred bytes fit
DELIVERY_TIMEOUT_SECONDS = 30.0
# On a dead letter the collector writes: it names the topic and partition the event was meant for,
# at offset 0, since it never reached a topic (streams/live/event_collector.py).
SOURCE_HEADER, COLLECTOR_SOURCE = "streams-source", b"collector"
JSON_HEADERS = [(CONTENT_TYPE, JSON_CONTENT_TYPE.encode())]


class BadBatch(Exception):
    """The request as a whole is not a batch (400): nothing in it was written."""


@dataclass
class Judged:
    """One event of a batch: the record to write, and what the answer says about it."""

    topic: str  # physical
    key: bytes | None
    value: bytes
    answer: dict[str, Any]
    headers: list[tuple[str, bytes]] = field(default_factory=list)
    delivered: threading.Event = field(default_factory=threading.Event)


def read_batch(body: bytes) -> dict[str, list[Any]]:
    """The events of a request body by logical topic; BadBatch when it is not a batch."""
    if len(body) > MAX_BATCH_BYTES:
        raise BadBatch(f"the batch is {len(body)} bytes, limit {MAX_BATCH_BYTES}")
    try:
        # NaN and lone surrogates are parsed here and refused per event by the ingest path.
        document = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise BadBatch(f"the body is not JSON: {exc}") from None
    if not isinstance(document, dict):
        raise BadBatch('the body must be a JSON object: {"clicks": [...], "orders": [...]}')
    unknown = sorted(set(document) - set(INPUT_TOPICS))
    if unknown:
        raise BadBatch(f"unknown keys {unknown[:5]}; a batch has only {list(INPUT_TOPICS)}")
    batch = {topic: document.get(topic, []) for topic in INPUT_TOPICS}
    if not all(isinstance(events, list) for events in batch.values()):
        raise BadBatch("clicks and orders must be JSON arrays of events")
    count = sum(len(events) for events in batch.values())
    if count > MAX_BATCH_EVENTS:
        raise BadBatch(f"the batch has {count} events, limit {MAX_BATCH_EVENTS}")
    return batch


def judge(settings: Settings, logical_topic: str, event: Any, now_ms: int) -> Judged:
    """Accept or refuse one event exactly as a worker reading it from its topic would."""
    # As JSON with its content type: NaN becomes a literal and a lone surrogate an escape, both
    # refused by the codec with the codes a worker would give them.
    raw = json.dumps(event).encode()
    key = _key(event.get("user_id") if isinstance(event, dict) else None)
    topic = settings.topic(logical_topic)
    try:
        parse_user_event(logical_topic, key, raw, JSON_HEADERS, settings.max_message_bytes, now_ms)
    except BadMessage as error:
        return _refused(settings, topic, key, raw, error, now_ms)
    # Written as a worker's producers write: msgpack, the canonical encoding.
    return Judged(topic, key, encode_value(event), {"status": "accepted", "event_id": event["event_id"]})


def _key(user_id: Any) -> bytes | None:
    """The record key: the user id when it is text. Any other user id fails the schema first."""
    if not isinstance(user_id, str):
        return None
    try:
        return encode_key(user_id)
    except UnicodeEncodeError:  # a lone surrogate: the codec refuses the event as bad_json
        return None


def _refused(
    settings: Settings, topic: str, key: bytes | None, raw: bytes, error: BadMessage, now_ms: int
) -> Judged:
    partition = partition_for(key, settings.partitions)
    letter = dead_letter_value(topic, partition, 0, key, raw, error, now_ms, settings.max_message_bytes)
    value, headers = encode_output(DEAD_LETTERS, letter, settings.output_format)
    return Judged(
        settings.topic(DEAD_LETTERS),
        letter["key"],
        value,
        {"status": "refused", **error.as_dict()},
        headers=[(SOURCE_HEADER, COLLECTOR_SOURCE), *headers],
    )


class EventCollector:
    """Writes judged batches with one producer (murmur2_random, idempotent, acks=all)."""

    def __init__(self, settings: Settings, producer: Producer, clock_ms: Callable[[], int]) -> None:
        self.settings = settings
        self.producer = producer
        self.clock_ms = clock_ms  # the record timestamp, against which `ts_in_future` is judged

    def collect(self, batch: dict[str, list[Any]]) -> tuple[int, dict[str, Any]]:
        """Blocking (run it off the event loop): HTTP status and the per-event answer."""
        now_ms = self.clock_ms()
        judged = {
            topic: [judge(self.settings, topic, e, now_ms) for e in events] for topic, events in batch.items()
        }
        every = [j for items in judged.values() for j in items]
        for item in every:
            self._produce(item, now_ms)
        # Not flush(): that waits for other requests' messages too, and their delivery callbacks
        # may be served by another request's thread; each event's own flag says when it is done.
        deadline = time.monotonic() + DELIVERY_TIMEOUT_SECONDS
        while not all(j.delivered.is_set() for j in every) and time.monotonic() < deadline:
            self.producer.poll(0.05)
        failed = 0
        for item in every:
            if not item.delivered.is_set():
                item.answer = {"status": "failed", "message": "the broker did not acknowledge it in time"}
            if item.answer["status"] == "failed":
                failed += 1
        answer: dict[str, Any] = {
            "accepted": sum(1 for j in every if j.answer["status"] == "accepted"),
            "refused": sum(1 for j in every if j.answer["status"] == "refused"),
            "failed": failed,
            **{topic: [j.answer for j in items] for topic, items in judged.items()},
        }
        # A refusal is final (the event can never be processed); a failure is worth sending again.
        return (503 if failed else 200), answer

    def _produce(self, item: Judged, now_ms: int) -> None:
        def delivered(error: KafkaError | None, message: Message) -> None:
            if error is not None:
                item.answer = {"status": "failed", "message": f"not written: {error.str()}"}
            elif item.answer["status"] == "accepted":
                item.answer["partition"] = message.partition()
            item.delivered.set()

        while True:
            try:
                self.producer.produce(
                    item.topic,
                    item.value,
                    item.key,
                    headers=item.headers or None,
                    timestamp=now_ms,
                    on_delivery=delivered,
                )
                return
            except BufferError:  # the local queue is full: let acknowledgements drain it
                self.producer.poll(0.05)
