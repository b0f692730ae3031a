"""The consumer loop of `streams deliver`: read a batch, deliver it, then commit it.

An input offset is committed only once the receiver answered 2xx for every output before it, or the
output went to `dead-letters` (refused by the receiver, or not an output at all) and the broker
acknowledged that, or it was a `replay: true` output that is not delivered. A crash therefore sends
at most the uncommitted batch again, with the same idempotency keys. One batch is in flight at a
time, so a receiver sees each user's outputs in the order the worker wrote them.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from confluent_kafka import Consumer, KafkaError, Message, Producer, TopicPartition

from streams.codec import CONTENT_TYPE, JSON_CONTENT_TYPE, Headers, decode_value
from streams.config import Settings
from streams.deadletters import dead_letter_value
from streams.deliver.config import DeliverConfig
from streams.deliver.formats import SEGMENTS, TRIGGERS, Output, make_format
from streams.deliver.metrics import DeliverMetrics
from streams.deliver.sender import Answer, Sender, Stopped
from streams.errors import BadMessage
from streams.kafka.clients import librdkafka_config
from streams.live.transport import producer_config
from streams.output_encoding import DEAD_LETTERS, encode_output
from streams.schemas import validate

log = logging.getLogger(__name__)

SCHEMA_OF = {TRIGGERS: "promotion_trigger", SEGMENTS: "audience_segment"}
# Waiting out a receiver that is down must not cost the connector its partitions: the consumer
# leaves its group when it does not poll for this long (librdkafka's maximum, one day).
MAX_POLL_INTERVAL_MS = 86_400_000


class RefusedByReceiver(BadMessage):
    """The receiver answered with a final 4xx: retrying the same request cannot succeed."""


@dataclass
class DeliverSummary:
    delivered: int = 0
    dead_lettered: int = 0
    skipped_replay: int = 0
    bad_input: int = 0
    batches: int = 0


def decode_output(source: str, raw: bytes | None, headers: Headers) -> dict[str, Any]:
    """A trigger or segment change from its bytes: msgpack, or JSON when it starts with `{` (msgpack
    never encodes a map that way) whatever its headers say; validated against its schema."""
    if raw and raw[:1] == b"{":
        headers = [(CONTENT_TYPE, JSON_CONTENT_TYPE.encode())]
    return validate(SCHEMA_OF[source], decode_value(raw, headers))


def refusal_error(answer: Answer) -> RefusedByReceiver:
    return RefusedByReceiver(f"http_{answer.status}", f"receiver answered {answer.status}: {answer.body}")


class Connector:
    def __init__(
        self,
        settings: Settings,
        config: DeliverConfig,
        metrics: DeliverMetrics | None = None,
        stopping: threading.Event | None = None,
    ) -> None:
        self.settings = settings
        self.config = config
        self.metrics = metrics or DeliverMetrics()
        self.stopping = stopping or threading.Event()
        self.format = make_format(config.format, config.secret, config.api_key)
        self.sender = Sender(config, self.format, self.metrics, self.stopping)
        client = librdkafka_config(settings)
        self.consumer = Consumer(
            {
                **client,
                "group.id": config.group_id,
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
                "max.poll.interval.ms": MAX_POLL_INTERVAL_MS,
            }
        )
        self.producer = Producer(producer_config(client, linger_ms=5))
        self.summary = DeliverSummary()
        self._dead_letter_errors: list[str] = []

    def run(self, until_idle: float | None = None) -> DeliverSummary:
        """Until stopped (or `until_idle` seconds without a message)."""
        self.consumer.subscribe([self.settings.topic(source) for source in self.config.sources])
        last_message = time.monotonic()
        try:
            while not self.stopping.is_set():
                messages = self.consumer.consume(self.config.batch_size, timeout=0.5)
                if not messages:
                    if until_idle is not None and time.monotonic() - last_message > until_idle:
                        break
                    continue
                last_message = time.monotonic()
                self.process(messages)
        except Stopped:
            log.info("stopped with a batch unacknowledged: it is delivered again on the next start")
        finally:
            self.consumer.close()
            self.producer.flush(10)
        return self.summary

    def process(self, messages: list[Message]) -> None:
        """Deliver one batch, dead-letter what cannot be, then commit its offsets."""
        outputs: list[Output] = []
        origins: list[Message] = []
        ends: dict[tuple[str, int], int] = {}
        for message in messages:
            error = message.error()
            if error is not None:
                if error.fatal():
                    raise RuntimeError(f"consumer failed: {error.str()}")
                if error.code() != KafkaError._PARTITION_EOF:
                    log.warning("consumer: %s", error.str())
                continue
            ends[(message.topic(), message.partition())] = message.offset() + 1
            source = self.settings.logical(message.topic()) or ""
            try:
                output = Output(source, decode_output(source, message.value(), message.headers()))
            except BadMessage as bad:
                self._dead_letter(message, bad, source, "bad_input")
                continue
            if output.replay and not self.config.backfill:
                self._count(source, "skipped_replay")
                continue
            outputs.append(output)
            origins.append(message)
        for request in self.format.requests(outputs):
            answer = self.sender.deliver(request)
            for index in request.carries:
                if answer.taken:
                    self._count(outputs[index].source, "delivered")
                else:
                    self._dead_letter(
                        origins[index], refusal_error(answer), outputs[index].source, "dead_lettered"
                    )
        self._commit(ends)

    def _dead_letter(self, message: Message, error: BadMessage, source: str, outcome: str) -> None:
        _, ts = message.timestamp()
        where = (message.topic(), message.partition(), message.offset())
        value = dead_letter_value(*where, message.key(), message.value(), error, max(ts, 0))
        encoded, headers = encode_output(DEAD_LETTERS, value, self.settings.output_format)
        self.producer.produce(
            self.settings.topic(DEAD_LETTERS),
            encoded,
            message.key(),
            headers=headers,
            on_delivery=self._dead_letter_acknowledged,
        )
        self._count(source or "unknown", outcome)

    def _dead_letter_acknowledged(self, error: KafkaError | None, _message: Message) -> None:
        if error is not None:
            self._dead_letter_errors.append(error.str())

    def _commit(self, ends: Mapping[tuple[str, int], int]) -> None:
        # Dead letters first: an offset is committed only once what became of its message is durable.
        while self.producer.flush(1.0):
            if self.stopping.is_set():
                raise Stopped
        if self._dead_letter_errors:
            errors, self._dead_letter_errors = self._dead_letter_errors, []
            raise RuntimeError(f"dead letters not written ({errors[0]}): offsets left uncommitted")
        if not ends:
            return
        offsets = [TopicPartition(topic, partition, offset) for (topic, partition), offset in ends.items()]
        try:
            self.consumer.commit(offsets=offsets, asynchronous=False)
        except Exception as exc:  # a rebalance took the partitions: their new owner delivers again
            log.warning("offset commit failed: %s", exc)
            return
        self.metrics.commits.inc()
        self.summary.batches += 1

    def _count(self, source: str, outcome: str) -> None:
        self.metrics.outputs.labels(source, outcome).inc()
        setattr(self.summary, outcome, getattr(self.summary, outcome) + 1)
