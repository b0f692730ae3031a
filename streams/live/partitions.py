"""The input partitions a worker owns: per partition number, its local store (users' states, the
partition state), restored from the changelogs when assigned, and the
worker's derived indexes (due timers, item watchers) rebuilt from it.

Only the processing loop's thread writes here. HTTP views read the stores from the web thread
(RocksDB reads are thread-safe); a store stays open once opened, so a read never meets a closed
database after a partition moves away.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import msgpack

from streams.config import PARTITION_TABLE, STATE_TABLE
from streams.core.processor import PartitionState, Processor
from streams.core.state import UserState
from streams.live.local_index import RocksTimerIndex, RocksWatchIndex
from streams.live.partition_store import PartitionStore
from streams.live.rocks import RocksMemory
from streams.live.tables import decode_indexed, decode_state

log = logging.getLogger(__name__)

TABLES = (STATE_TABLE, PARTITION_TABLE)
# Restores a partition's store from its changelogs; returns the changelog records applied.
Restore = Callable[[PartitionStore, int], int]


def partition_key(partition: int) -> bytes:
    return f"p{partition}".encode()


@dataclass(slots=True)
class PartitionTask:
    """One owned partition number: its store and what the core keeps beyond its users."""

    partition: int
    store: PartitionStore
    state: PartitionState
    wall_at_watermark: float  # time.time() when the watermark last moved (wall-clock timers)

    def load_state(self, user_id: str) -> UserState | None:
        raw = self.store.get(STATE_TABLE, user_id.encode())
        return None if raw is None else decode_state(raw)


class OwnedPartitions:
    def __init__(
        self,
        directory: Path,
        memory: RocksMemory,
        processor: Processor,
        timers: RocksTimerIndex,
        watchers: RocksWatchIndex,
        write_buffer_bytes: int,
    ) -> None:
        self.directory = directory
        self.memory = memory
        self.processor = processor
        self.timers = timers
        self.watchers = watchers
        self.write_buffer_bytes = write_buffer_bytes
        self.tasks: dict[int, PartitionTask] = {}
        self.stores: dict[int, PartitionStore] = {}  # every store opened, owned or not
        self._indexed: set[int] = set()  # partitions whose users the watch index holds

    def store(self, partition: int) -> PartitionStore:
        store = self.stores.get(partition)
        if store is None:
            store = self.stores[partition] = PartitionStore(
                self.directory / str(partition), self.memory, self.write_buffer_bytes
            )
        return store

    def assign(self, partition: int, restore: Restore) -> PartitionTask:
        started = time.monotonic()
        store = self.store(partition)
        if partition in self._indexed:
            # The watch index still holds its users as they were when it was last owned here,
            # which is what the store holds until the restore below brings it up to date.
            self.watchers.forget((user, watched) for user, _, watched in _indexed_fields(store))
        records = restore(store, partition)
        raw = store.get(PARTITION_TABLE, partition_key(partition))
        state = (
            PartitionState.from_wire(msgpack.unpackb(raw, raw=False))
            if raw is not None
            else self.processor.new_partition_state()
        )
        task = self.tasks[partition] = PartitionTask(partition, store, state, time.time())
        timers = self._index(partition, store)
        log.info(
            "partition %d: %d changelog records restored, %d pending timers indexed in %.1f s",
            partition,
            records,
            timers,
            time.monotonic() - started,
        )
        return task

    def revoke(self, partition: int) -> None:
        self.tasks.pop(partition, None)
        self.timers.drop_partition(partition)

    def _index(self, partition: int, store: PartitionStore) -> int:
        """Rebuild the partition's due-timer and watch index entries from its stored states."""
        self._indexed.add(partition)
        timers: list[tuple[int, str, str]] = []

        def watches() -> Iterator[tuple[str, list[str]]]:  # one at a time: a million users
            for user, due, watched in _indexed_fields(store):
                timers.extend((at, user, kind) for kind, at in due.items())
                yield user, watched

        self.watchers.add_unindexed(watches())
        return self.timers.rebuild_partition(partition, timers)

    def states(self) -> dict[int, PartitionState]:
        """The owned partitions' states, as the core's `process_batch` takes them (a new dict whose
        values are the tasks' own objects)."""
        return {p: task.state for p, task in self.tasks.items()}

    def close(self) -> None:
        for store in self.stores.values():
            store.close()
        self.stores.clear()
        self.tasks.clear()


def _indexed_fields(store: PartitionStore) -> Iterator[tuple[str, dict[str, int], list[str]]]:
    return (decode_indexed(raw) for _, raw in store.items(STATE_TABLE))
