"""A checkpoint: what one round of processing changed, made durable in the order Kafka Streams and
quixstreams use.

1. The outputs are produced and acknowledged. A re-delivered event is a no-op for the state and
   emits nothing, so every output must be on its topic before the state that records its event.
2. One changelog record per changed key (a user's state is written once however many of its
   events the round held) is produced and acknowledged.
3. The input offsets are committed. A failed commit is not fatal: the events after the last
   committed offset are delivered again and change nothing (the offset watermark in each state).
   Hence a checkpoint need not wait for the commit's answer (`wait_commit=False`); only one whose
   partitions are about to move away must.
4. Each partition's local database gets its writes and the changelog offsets they reach in one
   write batch, so the local copy never runs ahead of the changelog.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from streams.live.partition_store import PartitionStore

log = logging.getLogger(__name__)

TopicPartition = tuple[str, int]


@dataclass(frozen=True, slots=True)
class Record:
    topic: str  # physical topic name
    key: bytes | None
    value: bytes | None
    partition: int | None = None  # None: the producer's partitioner (murmur2 of the key)
    headers: tuple[tuple[str, bytes], ...] = ()


class DeliveryFailed(RuntimeError):
    """The broker did not acknowledge a record: the checkpoint cannot go on without losing it."""


class Transport(Protocol):
    def produce(self, record: Record) -> None: ...

    def flush(self) -> Mapping[TopicPartition, int]:
        """Wait until every record produced so far is acknowledged; the last acknowledged offset per
        topic-partition since the previous flush. Raises DeliveryFailed."""
        ...

    def commit(self, offsets: Mapping[TopicPartition, int], wait: bool = True) -> bool:
        """Commit the next input offset to read per topic-partition; False: not committed.
        `wait=False`: only sent (True), a failure is logged when it comes back."""
        ...


@dataclass(slots=True)
class Checkpoint:
    outputs: list[Record] = field(default_factory=list)
    # partition -> table -> key -> value (None: delete); the last write of a key wins
    writes: dict[int, dict[str, dict[bytes, bytes | None]]] = field(default_factory=dict)
    offsets: dict[TopicPartition, int] = field(default_factory=dict)  # next input offset to read

    def send(self, record: Record) -> None:
        self.outputs.append(record)

    def put(self, partition: int, table: str, key: bytes, value: bytes | None) -> None:
        self.writes.setdefault(partition, {}).setdefault(table, {})[key] = value

    def processed(self, topic: str, partition: int, next_offset: int) -> None:
        tp = (topic, partition)
        self.offsets[tp] = max(next_offset, self.offsets.get(tp, 0))

    def __bool__(self) -> bool:
        return bool(self.outputs or self.writes or self.offsets)


def complete(
    checkpoint: Checkpoint,
    transport: Transport,
    stores: Mapping[int, PartitionStore],
    changelog_topic: Callable[[str], str],
    wait_commit: bool = True,
) -> bool:
    """Make `checkpoint` durable (see the module's steps); True if its input offsets were committed
    (or, with `wait_commit=False`, sent to be)."""
    for record in checkpoint.outputs:
        transport.produce(record)
    transport.flush()
    for partition, tables in checkpoint.writes.items():
        for table, rows in tables.items():
            topic = changelog_topic(table)
            for key, value in rows.items():
                transport.produce(Record(topic, key, value, partition))
    acked = transport.flush()
    committed = not checkpoint.offsets or transport.commit(checkpoint.offsets, wait=wait_commit)
    if not committed:
        log.warning("input offsets not committed: the events after them will be delivered again")
    for partition, tables in checkpoint.writes.items():
        reached = {}
        for table in tables:
            offset = acked.get((changelog_topic(table), partition))
            if offset is None:
                raise DeliveryFailed(f"{changelog_topic(table)}[{partition}]: no acknowledged offset")
            reached[table] = offset
        stores[partition].write(tables, reached)
    return committed
