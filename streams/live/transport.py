"""The checkpoint's `Transport` on librdkafka (confluent-kafka): an idempotent producer and the
input consumer's offset commits."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from functools import partial
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition

from streams.live.checkpoint import Acks, Record
from streams.live.checkpoint import TopicPartition as TP

log = logging.getLogger(__name__)


def producer_config(client: Mapping[str, Any], linger_ms: float) -> dict[str, Any]:
    """`client`: `streams.kafka.clients.librdkafka_config`. murmur2_random puts a key where the
    Java clients and kafka-python do (librdkafka's default, crc32, would not); idempotence keeps a
    retried batch from being written twice or out of order."""
    return {
        **client,
        "partitioner": "murmur2_random",
        "acks": "all",
        "enable.idempotence": True,
        "linger.ms": linger_ms,
    }


def _delivered(acks: Acks, error: KafkaError | None, message: Message) -> None:
    if error is not None:
        acks.failed(f"{message.topic()}[{message.partition()}]: {error.str()}")
    else:
        acks.acknowledged((message.topic(), message.partition()), message.offset())


def commit_answered(error: KafkaError | None, partitions: list[TopicPartition]) -> None:
    """The consumer's `on_commit`: an asynchronous commit that failed is only logged (the events
    after the last committed offset are delivered again and change nothing)."""
    failed = [p for p in partitions if p.error is not None]
    if error is not None or failed:
        log.warning("offset commit failed: %s", error or failed[0].error)


class LibrdkafkaTransport:
    def __init__(self, producer: Producer, consumer: Consumer | None = None) -> None:
        self.producer = producer
        self.consumer = consumer  # whose group the input offsets are committed for

    def produce(self, record: Record, acks: Acks) -> None:
        kwargs: dict[str, Any] = {"on_delivery": partial(_delivered, acks)}
        if record.partition is not None:
            kwargs["partition"] = record.partition
        if record.headers:
            kwargs["headers"] = list(record.headers)
        while True:
            try:
                self.producer.produce(record.topic, record.value, record.key, **kwargs)
                break
            except BufferError:  # the local queue is full: let acknowledgements drain it
                self.producer.poll(0.05)
        acks.sent()

    def poll(self, timeout: float) -> None:
        self.producer.poll(timeout)

    def commit(self, offsets: Mapping[TP, int], wait: bool = True) -> bool:
        if self.consumer is None:
            return False
        try:
            self.consumer.commit(
                offsets=[
                    TopicPartition(topic, partition, offset) for (topic, partition), offset in offsets.items()
                ],
                asynchronous=not wait,
            )
        except KafkaException as exc:
            log.warning("offset commit failed: %s", exc)
            return False
        return True
