"""A second ceiling: the passthrough of `streams.bench.passthrough` on librdkafka (confluent-kafka).

Consume in batches -> one output of a recommendation's size per input event, keyed like one and
carrying the cause's event id; no state, no model. It shows what the client library alone costs.

    python -m streams.bench.ckafka_passthrough --bootstrap HOST:PORT --inputs a,b --output c --group g
"""

from __future__ import annotations

from typing import Any

import msgpack
from confluent_kafka import OFFSET_END, Consumer, KafkaException, Producer, TopicPartition

from streams.bench.peer_cli import peer_arguments
from streams.config import Settings
from streams.kafka.clients import librdkafka_config


def passthrough(
    bootstrap: str, inputs: list[str], output: str, group: str, size: int, from_start: bool
) -> None:
    base = librdkafka_config(Settings.from_env(bootstrap=bootstrap))  # security from the environment
    consumer = Consumer(
        {**base, "group.id": group, "auto.offset.reset": "earliest", "enable.auto.commit": True}
    )
    producer = Producer({**base, "acks": "all", "linger.ms": 1, "partitioner": "murmur2_random"})
    padding = b"x" * size
    assigned: list[TopicPartition] = []

    def on_assign(client: Consumer, partitions: list[TopicPartition]) -> None:
        if not from_start:  # only traffic sent after "ready" counts: start at each partition's end
            for tp in partitions:
                tp.offset = OFFSET_END
        client.assign(partitions)
        assigned[:] = partitions

    consumer.subscribe(inputs, on_assign=on_assign)
    try:
        while not assigned:
            consumer.poll(0.1)
        if not from_start:
            # OFFSET_END is resolved on the first fetch: wait for it before saying "ready".
            while any(p.offset < 0 for p in consumer.position(assigned)):
                consumer.poll(0.05)
        print("ready", flush=True)
        while True:
            messages = consumer.consume(num_messages=1000, timeout=0.1)
            for message in messages:
                if message.error() is not None:
                    raise KafkaException(message.error())
                event: dict[str, Any] = msgpack.unpackb(message.value(), raw=False)
                value = msgpack.packb({"cause_event_id": event.get("event_id"), "items": padding})
                producer.produce(output, value, key=message.key())
                producer.poll(0)
            if messages:
                producer.flush()
    finally:
        consumer.close()


def main() -> None:
    args = peer_arguments(__doc__)
    passthrough(args.bootstrap, args.inputs, args.output, args.group, args.size, args.from_start)


if __name__ == "__main__":
    main()
