"""The worker-wide RocksDB memory budget on real databases (rocksdict), no broker."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from streams.config import STATE_TABLE
from streams.live.partition_store import PartitionStore
from streams.live.rocks import MIB, RocksMemory, SharedMemoryOptions


def test_every_partitions_store_shares_one_bounded_cache(tmp_path: Path) -> None:
    memory = RocksMemory(cache_bytes=8 * MIB, write_buffer_bytes=4 * MIB)
    stores = [PartitionStore(tmp_path / str(p), memory, write_buffer_bytes=1 * MIB) for p in range(8)]
    try:
        # 8 databases x 3 MiB written, a checkpoint's worth to each in turn: each one's own cache
        # and buffers would hold far more than 8 MiB.
        for chunk in range(30):
            for store in stores:
                rows = {f"user-{i}".encode(): os.urandom(1024) for i in range(chunk * 100, chunk * 100 + 100)}
                store.write({STATE_TABLE: rows}, {STATE_TABLE: chunk})
        assert memory.usage()["memtable_bytes"] > 0
        for store in stores:
            assert all(store.get(STATE_TABLE, f"user-{i}".encode()) is not None for i in range(0, 3_000, 7))
        databases = [store.db for store in stores]
        # Memtables over the budget are flushed in the background, and the cache holds their
        # reservations until they are: both settle within the deadline or the budget is not kept.
        deadline = time.monotonic() + 10

        def settled(usage: dict[str, int]) -> bool:
            return usage["memtable_bytes"] <= 4 * MIB * 1.5 and usage["cache_bytes"] <= 8 * MIB * 1.1

        while not settled(usage := memory.usage(databases)) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert 0 < usage["cache_bytes"] <= 8 * MIB * 1.1, usage
        # The budget is kept at write time (the written database is flushed once the mutable
        # memtables pass 7/8 of it); a memtable on its way to disk still counts, hence the margin.
        assert usage["memtable_bytes"] <= 4 * MIB * 1.5, usage
        # 24 MiB written through 4 MiB of memtables: flushed to SST files, whose readers hold memory
        assert usage["table_readers_bytes"] > 0, usage
    finally:
        for store in stores:
            store.close()


def test_a_write_budget_must_fit_in_the_cache() -> None:
    with pytest.raises(ValueError, match="smaller than the cache"):
        RocksMemory(cache_bytes=4 * MIB, write_buffer_bytes=4 * MIB)


def test_a_reopened_database_still_caches_in_the_shared_budget(tmp_path: Path) -> None:
    """After a restart the databases exist: their blocks must still go to the one shared cache."""
    first = RocksMemory(cache_bytes=16 * MIB, write_buffer_bytes=4 * MIB)
    db = SharedMemoryOptions(first, write_buffer_size=1 * MIB).open(tmp_path / "db")
    for n in range(20_000):
        db.put(f"user-{n}".encode(), os.urandom(200))
    db.flush()
    db.close()
    memory = RocksMemory(cache_bytes=16 * MIB, write_buffer_bytes=4 * MIB)
    db = SharedMemoryOptions(memory, write_buffer_size=1 * MIB).open(tmp_path / "db")
    try:
        assert db.property_int_value("rocksdb.block-cache-capacity") == 16 * MIB
        before = memory.usage()["cache_bytes"]
        assert all(db.get(f"user-{n}".encode()) is not None for n in range(0, 20_000, 10))
        assert memory.usage()["cache_bytes"] - before > 1 * MIB  # the blocks read are in our cache
    finally:
        db.close()
