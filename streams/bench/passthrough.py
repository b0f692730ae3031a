"""The ceiling: a bare aiokafka consume -> produce loop over the same topics, no state, no model.

For each input event it sends one message of a recommendation's size, keyed like one and carrying
the cause's event id, so the measured cost is only what Kafka and a Python asyncio client take.

    python -m streams.bench.passthrough --bootstrap HOST:PORT --inputs a,b --output c --group g
"""

from __future__ import annotations

import asyncio

import msgpack
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from streams.bench.peer_cli import peer_arguments
from streams.config import Settings
from streams.kafka.clients import client_options


async def passthrough(
    bootstrap: str, inputs: list[str], output: str, group: str, size: int, from_start: bool = False
) -> None:
    options = client_options(Settings.from_env(bootstrap=bootstrap))  # security from the environment
    consumer = AIOKafkaConsumer(
        *inputs,
        **options,
        group_id=group,
        auto_offset_reset="earliest" if from_start else "latest",
        enable_auto_commit=True,
    )
    producer = AIOKafkaProducer(**options, acks="all", linger_ms=1)
    await consumer.start()
    await producer.start()
    padding = b"x" * size
    try:
        while not consumer.assignment():
            await consumer.getmany(timeout_ms=100)
        for tp in consumer.assignment():
            if not from_start:
                await consumer.position(tp)  # fixed now: traffic sent after "ready" is all seen
        print("ready", flush=True)
        while True:
            batches = await consumer.getmany(timeout_ms=100, max_records=256)
            sends = []
            for messages in batches.values():
                for message in messages:
                    event = msgpack.unpackb(message.value, raw=False)
                    value = msgpack.packb({"cause_event_id": event.get("event_id"), "items": padding})
                    sends.append(await producer.send(output, value, key=message.key))
            if sends:
                await asyncio.gather(*sends)
    finally:
        await consumer.stop()
        await producer.stop()


def main() -> None:
    args = peer_arguments(__doc__)
    asyncio.run(passthrough(args.bootstrap, args.inputs, args.output, args.group, args.size, args.from_start))


if __name__ == "__main__":
    main()
