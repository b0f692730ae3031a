"""Tables whose local RocksDB never runs ahead of their changelog.

Faust's RocksDB store writes a value locally at once and sends it to the changelog in the
background. A worker SIGKILLed in between keeps the local write while the changelog never gets it;
on restart Faust restores only what the changelog holds past the last acknowledged offset, so the
local copy stays ahead. The worker serves that copy, but the changelog (what the partition's next
owner restores, after a rebalance) still has the older value: the two disagree for good, e.g. a
timer already fired here is still pending there and fires a second time.

Here a write goes to the local database only when its changelog record is acknowledged, in the
order the records were sent (acknowledgements of one partition arrive in send order). Until then
it waits in memory, where reads see it. After a crash the local database therefore holds exactly an
acknowledged prefix of the changelog, which recovery completes from the last persisted offset.
The input offsets behind any write still in memory were not committed either (Faust flushes the
producer before it commits), so those events are delivered again and the writes made again.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Iterator
from typing import Any

import faust
from faust.stores import rocksdb
from faust.streams import current_event
from faust.types import TP

from streams.live.rocks import RocksMemory, SharedMemoryOptions

log = logging.getLogger(__name__)

Pending = tuple[int, bytes, bytes | None]  # (sequence, key, value; None = delete)


class AckedWriteStore(rocksdb.Store):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        memory = self.options.get("memory")
        if isinstance(memory, RocksMemory):
            sizes = {k: v for k, v in self.options.items() if k != "memory"}
            self.rocksdb_options = SharedMemoryOptions(memory, **sizes)
        self._sequence = 0
        self._unacked: dict[int, deque[Pending]] = {}  # partition -> writes in changelog send order
        self._newest: dict[int, dict[bytes, Pending]] = {}  # partition -> key -> its newest write

    # -- writes ---------------------------------------------------------------------------------------

    def _write_partition(self) -> int:
        event = current_event()
        if event is None:
            raise RuntimeError(f"table {self.table_name}: a write needs the partition's event context")
        return int(event.message.partition)

    def _hold(self, key: bytes, value: bytes | None) -> None:
        partition = self._write_partition()
        self._sequence += 1
        write = (self._sequence, key, value)
        self._unacked.setdefault(partition, deque()).append(write)
        self._newest.setdefault(partition, {})[key] = write
        self._key_index[key] = partition

    def _set(self, key: bytes, value: bytes | None) -> None:
        self._hold(key, value)

    def _del(self, key: bytes) -> None:
        self._hold(key, None)

    def on_changelog_acked(self, partition: int) -> None:
        """The oldest unacknowledged changelog record of `partition` reached the broker."""
        queue = self._unacked.get(partition)
        if not queue:
            log.warning("table %s[%d]: changelog ack without a pending write", self.table_name, partition)
            return
        sequence, key, value = queue.popleft()
        db = self._db_for_partition(partition)
        if value is None:
            db.delete(key)
        else:
            db.put(key, value)
        newest = self._newest[partition]
        if newest.get(key, (None,))[0] == sequence:
            del newest[key]

    def open_databases(self) -> list[Any]:
        """The RocksDB databases of the partitions this worker has open (for memory metrics)."""
        return list(self._dbs.values())

    def unacked(self) -> int:
        return sum(len(q) for q in self._unacked.values())

    # -- reads: a write waiting for its ack is already the value --------------------------------------

    def _pending(self, key: bytes) -> Pending | None:
        event = current_event()
        if event is not None:
            return self._newest.get(event.message.partition, {}).get(key)
        for newest in self._newest.values():
            if key in newest:
                return newest[key]
        return None

    def _get(self, key: bytes) -> bytes | None:
        pending = self._pending(key)
        if pending is not None:
            return pending[2]
        return super()._get(key)  # type: ignore[no-any-return]

    def _contains(self, key: bytes) -> bool:
        pending = self._pending(key)
        if pending is not None:
            return pending[2] is not None
        return bool(super()._contains(key))

    def partition_items(self, partition: int) -> Iterator[tuple[bytes, bytes]]:
        """Every key and value of one partition, writes still waiting for their ack included."""
        newest = self._newest.get(partition, {})
        for key, value in self._visible_items(self._db_for_partition(partition)):
            if key not in newest:
                yield key, value
        for _, key, value in newest.values():
            if value is not None:
                yield key, value

    def revoke_partitions(self, table: Any, tps: set[TP]) -> None:
        # Faust flushes the producer before it revokes, so nothing should wait here any more; what
        # does was never acknowledged and the partition's next owner rebuilds it from input.
        for tp in tps:
            if tp.topic in table.changelog_topic.topics:
                left = self._unacked.pop(tp.partition, deque())
                self._newest.pop(tp.partition, None)
                if left:
                    log.warning(
                        "table %s[%d]: %d unacknowledged writes dropped",
                        self.table_name,
                        tp.partition,
                        len(left),
                    )
        super().revoke_partitions(table, tps)


class AckedTable(faust.Table):
    """A Faust table on `AckedWriteStore` (the app's `Table` class)."""

    def _new_store_by_url(self, url: Any) -> AckedWriteStore:
        return AckedWriteStore(
            url,
            self.app,
            self,
            table_name=self.name,
            key_type=self.key_type,
            key_serializer=self.key_serializer,
            value_serializer=self.value_serializer,
            value_type=self.value_type,
            loop=self.loop,
            options=self.options,
        )

    def _on_changelog_sent(self, fut: Any) -> None:
        result = fut.result()
        store = self.data
        if isinstance(store, AckedWriteStore):
            store.on_changelog_acked(result.topic_partition.partition)
        super()._on_changelog_sent(fut)
