"""Read user states straight from the table's changelog topic: no worker needed, always the durable truth."""

from __future__ import annotations

from kafka import KafkaConsumer, TopicPartition

from streams.config import STATE_TABLE, Settings
from streams.core.state import UserState
from streams.kafka.clients import client_options
from streams.live.tables import decode_state
from streams.partitioning import partition_for


def read_states(settings: Settings, user_id: str | None = None) -> dict[str, UserState]:
    """Latest state per user (or of one user: only its partition is read)."""
    topic = settings.changelog_topic(STATE_TABLE)
    consumer = KafkaConsumer(**client_options(settings), enable_auto_commit=False, group_id=None)
    try:
        ids = consumer.partitions_for_topic(topic)
        if not ids:
            return {}
        key = None if user_id is None else user_id.encode()
        if key is None:
            partitions = [TopicPartition(topic, p) for p in sorted(ids)]
        else:
            # The changelog is co-partitioned with the inputs, which producers key with murmur2.
            partitions = [TopicPartition(topic, partition_for(key, len(ids)))]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        end = consumer.end_offsets(partitions)
        latest: dict[bytes, bytes | None] = {}
        while any(consumer.position(tp) < end[tp] for tp in partitions):
            for messages in consumer.poll(timeout_ms=500, max_records=10_000).values():
                for message in messages:
                    if key is None or message.key == key:
                        latest[message.key] = message.value
        return {k.decode(): decode_state(v) for k, v in latest.items() if v is not None}
    finally:
        consumer.close()
