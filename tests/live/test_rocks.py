"""The worker-wide RocksDB memory budget on real databases (rocksdict), no broker."""

from __future__ import annotations

import os
from pathlib import Path

import faust
import pytest

from streams.live.context import PartitionContexts
from streams.live.rocks import MIB, RocksMemory, SharedMemoryOptions
from streams.live.store import AckedTable, AckedWriteStore


def test_every_database_of_every_table_shares_one_bounded_cache(tmp_path: Path) -> None:
    memory = RocksMemory(cache_bytes=8 * MIB, write_buffer_bytes=4 * MIB)
    app = faust.App(
        "rocks-test", store="rocksdb://", datadir=str(tmp_path), Table=AckedTable, autodiscover=False
    )
    options = {"write_buffer_size": 1 * MIB, "max_write_buffer_number": 2, "memory": memory}
    tables = [
        app.Table(name, default=None, partitions=4, key_type=bytes, value_type=bytes, options=options)
        for name in ("a", "b")
    ]
    stores = [t.data for t in tables]
    assert all(
        isinstance(s, AckedWriteStore) and isinstance(s.rocksdb_options, SharedMemoryOptions) for s in stores
    )
    contexts = PartitionContexts("clicks")
    # 8 databases x 3 MiB written: each one's own cache and buffers would hold far more than 8 MiB.
    for store in stores:
        assert isinstance(store, AckedWriteStore)
        for partition in range(4):
            with contexts.partition(partition):
                for n in range(3_000):
                    store[f"user-{n}".encode()] = os.urandom(1024)
            for _ in range(3_000):
                store.on_changelog_acked(partition)
    assert memory.usage()["memtable_bytes"] > 0
    for store in stores:
        assert isinstance(store, AckedWriteStore)
        for partition in range(4):
            with contexts.partition(partition):
                assert all(store[f"user-{n}".encode()] is not None for n in range(0, 3_000, 7))
    databases = [
        db for store in stores if isinstance(store, AckedWriteStore) for db in store.open_databases()
    ]
    assert len(databases) == 8
    usage = memory.usage(databases)
    assert 0 < usage["cache_bytes"] <= 8 * MIB * 1.1, usage
    assert usage["memtable_bytes"] <= 4 * MIB * 1.1, usage
    # 24 MiB written through 4 MiB of memtables: flushed to SST files, whose readers hold memory
    assert usage["table_readers_bytes"] > 0, usage


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
