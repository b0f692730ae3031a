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
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import msgpack

from streams.config import PARTITION_TABLE, STATE_TABLE
from streams.core.processor import PartitionState, Processor
from streams.core.state import UserState
from streams.live.local_index import RocksTimerIndex, RocksWatchIndex
from streams.live.partition_store import PartitionStore
from streams.live.restore import Observe
from streams.live.rocks import RocksMemory
from streams.live.tables import decode_indexed, decode_state

log = logging.getLogger(__name__)

TABLES = (STATE_TABLE, PARTITION_TABLE)
# Restores a partition's store from its changelogs, showing each table's records to the observer
# (`streams.live.restore.Observe`); returns the changelog records applied.
Restore = Callable[[PartitionStore, int, Observe], int]
# Users whose index fields a restore into an empty store keeps in memory; past it the fields are
# read back from the store instead.
FIELDS_IN_MEMORY = 1_000_000
IndexFields = tuple[str, dict[str, int], list[str]]  # user id, timers (kind -> due), watched items


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
        fields = _RestoredFields() if store.changelog_offset(STATE_TABLE) < 0 else None
        records = restore(store, partition, fields.observe if fields is not None else _ignore)
        raw = store.get(PARTITION_TABLE, partition_key(partition))
        state = (
            PartitionState.from_wire(msgpack.unpackb(raw, raw=False))
            if raw is not None
            else self.processor.new_partition_state()
        )
        task = self.tasks[partition] = PartitionTask(partition, store, state, time.time())
        if fields is not None and fields.complete:
            timers = self._index(partition, fields.by_key.values())
        else:
            timers = self._index(partition, (decode_indexed(raw) for raw in store.values(STATE_TABLE)))
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
        self.watchers.drop_partition(partition)

    def _index(self, partition: int, states: Iterable[IndexFields]) -> int:
        """Rebuild the partition's due-timer and watch index entries from its states' fields."""
        timers: list[tuple[int, str, str]] = []

        def watches() -> Iterator[tuple[str, list[str]]]:  # one at a time: a million users
            for user, due, watched in states:
                timers.extend((at, user, kind) for kind, at in due.items())
                yield user, watched

        self.watchers.rebuild_partition(partition, watches())
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


class _RestoredFields:
    """The index fields of the states a restore loads into an empty store (the last value of each
    key), so the indexes are built without reading a million states back from the store."""

    def __init__(self) -> None:
        self.by_key: dict[bytes, IndexFields] = {}
        self.complete = True  # False once past FIELDS_IN_MEMORY: read the store back instead
        self._items: dict[str, str] = {}  # one string per item id, however many users watch it

    def observe(self, table: str, rows: Mapping[bytes, bytes | None]) -> None:
        if table != STATE_TABLE or not self.complete:
            return
        items = self._items
        for key, raw in rows.items():
            if raw is None:
                self.by_key.pop(key, None)
                continue
            user, due, watched = decode_indexed(raw)
            self.by_key[key] = (user, due, [items.setdefault(item, item) for item in watched])
        if len(self.by_key) > FIELDS_IN_MEMORY:
            self.complete = False
            self.by_key.clear()


def _ignore(table: str, rows: Mapping[bytes, bytes | None]) -> None:
    """An observer for a restore onto a store that already holds states (its indexes read it)."""
