"""A checkpoint: what the rounds since the last one changed, made durable in the order Kafka
Streams and quixstreams use.

1. The outputs are produced and acknowledged. A re-delivered event is a no-op for the state and
   emits nothing, so every output must be on its topic before the state that records its event.
2. One changelog record per changed key (a user's state is written once however many of its
   events the checkpoint held) is produced and acknowledged.
3. The input offsets are committed. A failed commit is not fatal: the events after the last
   committed offset are delivered again and change nothing (the offset watermark in each state).
   Hence a checkpoint need not wait for the commit's answer; only one whose partitions are about
   to move away must.
4. Each partition's local database gets its writes and the changelog offsets they reach in one
   write batch, so the local copy never runs ahead of the changelog.

A `Completion` takes each step once the broker has acknowledged the one before, without waiting:
the processing loop goes on with the next rounds meanwhile and reads through the checkpoint's
writes until step 4 has put them in the local stores.
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


@dataclass(slots=True)
class Acks:
    """What the broker has said so far of a group of produced records."""

    outstanding: int = 0  # produced, not answered yet
    produced: int = 0
    offsets: dict[TopicPartition, int] = field(default_factory=dict)  # highest acknowledged offset
    failures: list[str] = field(default_factory=list)

    def sent(self) -> None:
        self.outstanding += 1
        self.produced += 1

    def acknowledged(self, tp: TopicPartition, offset: int) -> None:
        self.outstanding -= 1
        if offset > self.offsets.get(tp, -1):
            self.offsets[tp] = offset

    def failed(self, reason: str) -> None:
        self.outstanding -= 1
        self.failures.append(reason)

    @property
    def answered(self) -> bool:
        return self.outstanding == 0

    def raise_failures(self) -> None:
        if self.failures:
            raise DeliveryFailed(f"{len(self.failures)} records not acknowledged, first: {self.failures[0]}")


class Transport(Protocol):
    def produce(self, record: Record, acks: Acks) -> None:
        """Send `record`; its acknowledgement (or failure) is counted in `acks`."""
        ...

    def poll(self, timeout: float) -> None:
        """Take in the acknowledgements that have come, waiting up to `timeout` for one."""
        ...

    def commit(self, offsets: Mapping[TopicPartition, int], wait: bool = True) -> bool:
        """Commit the next input offset to read per topic-partition; False: not committed.
        `wait=False`: only sent (True), a failure is logged when it comes back."""
        ...


@dataclass(slots=True)
class Checkpoint:
    outputs: list[Record] = field(default_factory=list)  # not produced yet
    output_acks: Acks = field(default_factory=Acks)  # of the outputs produced
    # partition -> table -> key -> value (None: delete); the last write of a key wins
    writes: dict[int, dict[str, dict[bytes, bytes | None]]] = field(default_factory=dict)
    offsets: dict[TopicPartition, int] = field(default_factory=dict)  # next input offset to read

    def send(self, record: Record) -> None:
        self.outputs.append(record)

    def produce_outputs(self, transport: Transport) -> None:
        """Send the outputs added since the last call (a recommendation goes out at once)."""
        for record in self.outputs:
            transport.produce(record, self.output_acks)
        self.outputs.clear()

    def put(self, partition: int, table: str, key: bytes, value: bytes | None) -> None:
        self.writes.setdefault(partition, {}).setdefault(table, {})[key] = value

    def processed(self, topic: str, partition: int, next_offset: int) -> None:
        tp = (topic, partition)
        self.offsets[tp] = max(next_offset, self.offsets.get(tp, 0))

    def __bool__(self) -> bool:
        return bool(self.outputs or self.output_acks.produced or self.writes or self.offsets)


WAIT_SECONDS = 0.1  # one wait of `Completion.finish`: the loop around it logs while the broker is away


class Completion:
    """One checkpoint on its way to durable (the module's steps)."""

    def __init__(
        self,
        checkpoint: Checkpoint,
        transport: Transport,
        stores: Mapping[int, PartitionStore],
        changelog_topic: Callable[[str], str],
        wait_commit: bool = False,
    ) -> None:
        self.checkpoint = checkpoint
        self._transport = transport
        self._stores = stores
        self._changelog_topic = changelog_topic
        self._wait_commit = wait_commit
        self._changelog: Acks | None = None  # step 2 begun
        self.done = False
        self.committed = False  # its input offsets committed (or sent to be, without `wait_commit`)
        checkpoint.produce_outputs(transport)

    def advance(self) -> bool:
        """Take every step the acknowledgements so far allow, without waiting; True: complete."""
        self._transport.poll(0)
        return self._step()

    def finish(self) -> bool:
        """Wait until complete; True if its input offsets were committed."""
        waited = 0.0
        while not self._step():
            self._transport.poll(WAIT_SECONDS)
            waited += WAIT_SECONDS
            if waited >= 10:
                waited = 0.0
                log.warning("checkpoint: records unacknowledged for 10 s (broker unreachable?)")
        return self.committed

    def read(self, partition: int, table: str, key: bytes, missing: object) -> object:
        """A write of this checkpoint (bytes, or None for a delete), else `missing`."""
        return self.checkpoint.writes.get(partition, {}).get(table, {}).get(key, missing)

    def _step(self) -> bool:
        if self.done:
            return True
        checkpoint = self.checkpoint
        if self._changelog is None:
            if not checkpoint.output_acks.answered:
                return False
            checkpoint.output_acks.raise_failures()
            self._changelog = Acks()
            for partition, tables in checkpoint.writes.items():
                for table, rows in tables.items():
                    topic = self._changelog_topic(table)
                    for key, value in rows.items():
                        self._transport.produce(Record(topic, key, value, partition), self._changelog)
        if not self._changelog.answered:
            return False
        self._changelog.raise_failures()
        self.committed = not checkpoint.offsets or self._transport.commit(
            checkpoint.offsets, wait=self._wait_commit
        )
        if not self.committed:
            log.warning("input offsets not committed: the events after them will be delivered again")
        for partition, tables in checkpoint.writes.items():
            reached = {}
            for table in tables:
                topic = self._changelog_topic(table)
                offset = self._changelog.offsets.get((topic, partition))
                if offset is None:
                    raise DeliveryFailed(f"{topic}[{partition}]: no acknowledged offset")
                reached[table] = offset
            self._stores[partition].write(tables, reached)
        self.done = True
        return True


def complete(
    checkpoint: Checkpoint,
    transport: Transport,
    stores: Mapping[int, PartitionStore],
    changelog_topic: Callable[[str], str],
    wait_commit: bool = True,
) -> bool:
    """Make `checkpoint` durable now; True if its input offsets were committed (or, with
    `wait_commit=False`, sent to be)."""
    return Completion(checkpoint, transport, stores, changelog_topic, wait_commit).finish()
