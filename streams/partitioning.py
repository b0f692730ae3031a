"""Which partition a keyed message lands on: Kafka's default partitioner (murmur2).

Every producer of user events must use it (Java and kafka-python do by default; librdkafka needs
`partitioner=murmur2_random`): state ownership, HTTP routing, `streams state` and the offline
engine all assume a user lives on this partition.
"""

from __future__ import annotations

from kafka.partitioner.default import murmur2


def partition_for(key: str | bytes | None, partitions: int) -> int:
    raw = key.encode() if isinstance(key, str) else (key or b"")
    return (murmur2(raw) & 0x7FFFFFFF) % partitions
