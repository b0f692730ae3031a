"""One memory budget for all of a worker's RocksDB databases.

Faust opens a database per table and partition (24 with 3 tables and 8 partitions) and gives each
its own block cache and write buffers, so a worker's memory bound is 24 times a database's and is
reached only after hours of traffic: memory climbs in steps long after warm-up, which looks like a
leak and cannot be told from one. Here every database of the process shares one LRU block cache,
and their memtables are charged to that cache (RocksDB's WriteBufferManager), as Kafka Streams
advises for many stores in one process. Index and filter blocks live in the cache too, so the
cache's capacity bounds what RocksDB holds, whatever the number of partitions or users.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import rocksdict
from faust.stores.rocksdb import RocksDBOptions

MIB = 1024 * 1024


@dataclass(frozen=True)
class RocksMemory:
    """The shared cache and memtable budget; one per worker process, handed to every table."""

    cache_bytes: int
    write_buffer_bytes: int  # memtables of all databases together, counted inside `cache_bytes`
    cache: rocksdict.Cache = field(init=False, repr=False)
    write_buffers: rocksdict.WriteBufferManager = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if not 0 < self.write_buffer_bytes < self.cache_bytes:
            raise ValueError(
                f"RocksDB write buffer budget ({self.write_buffer_bytes} bytes) must be positive and"
                f" smaller than the cache that holds it ({self.cache_bytes} bytes)"
            )
        cache = rocksdict.Cache(self.cache_bytes)
        object.__setattr__(self, "cache", cache)
        # allow_stall=False: a full budget flushes memtables early rather than blocking writers.
        manager = rocksdict.WriteBufferManager.new_write_buffer_manager_with_cache(
            self.write_buffer_bytes, False, cache
        )
        object.__setattr__(self, "write_buffers", manager)

    def usage(self, databases: Iterable[rocksdict.Rdict] = ()) -> dict[str, int]:
        """Bytes in the shared cache (memtables included), in memtables alone, pinned in the cache,
        and, summed over `databases`, in table readers: the one part of RocksDB's memory that is
        outside the cache (index and filter blocks are inside it) and grows with open SST files."""
        readers = sum(db.property_int_value("rocksdb.estimate-table-readers-mem") or 0 for db in databases)
        return {
            "cache_bytes": self.cache.get_usage(),
            "memtable_bytes": self.write_buffers.get_usage(),
            "pinned_bytes": self.cache.get_pinned_usage(),
            "table_readers_bytes": readers,
        }


class SharedMemoryOptions(RocksDBOptions):
    """Faust's RocksDB options with the worker's shared cache and memtable budget (rocksdict only)."""

    def __init__(self, memory: RocksMemory, **options: Any) -> None:
        super().__init__(**options, use_rocksdict=True)
        self.memory = memory

    def as_options(self) -> rocksdict.Options:
        options = rocksdict.Options(raw_mode=True)
        options.create_if_missing(True)
        options.set_max_open_files(self.max_open_files)
        options.set_write_buffer_size(self.write_buffer_size)
        options.set_target_file_size_base(self.target_file_size_base)
        options.set_max_write_buffer_number(self.max_write_buffer_number)
        options.set_write_buffer_manager(self.memory.write_buffers)
        table = rocksdict.BlockBasedOptions()
        table.set_bloom_filter(self.bloom_filter_size, block_based=True)
        table.set_block_cache(self.memory.cache)
        table.set_cache_index_and_filter_blocks(True)
        # Level-0 files are read on every miss: keep their index and filter from being evicted.
        table.set_pin_l0_filter_and_index_blocks_in_cache(True)
        table.set_index_type(rocksdict.BlockBasedIndexType.binary_search())
        options.set_block_based_table_factory(table)
        return options

    def open(self, path: Path, *, read_only: bool = False) -> rocksdict.Rdict:
        access = rocksdict.AccessType.read_write()
        # The column family's options are given too: for an existing database rocksdict otherwise
        # loads them from its OPTIONS file, whose table options come with a new 8 MiB block cache,
        # so every database reopened after a restart cached outside the shared budget (25 x 8 MiB).
        db = rocksdict.Rdict(
            str(path),
            options=self.as_options(),
            column_families={"default": self.as_options()},
            access_type=access,
        )
        db.set_read_options(rocksdict.ReadOptions())
        return db


def past_prefix(prefix: bytes) -> bytes:
    """The first key past every key that starts with `prefix` (an exclusive upper bound)."""
    return (int.from_bytes(prefix, "big") + 1).to_bytes(len(prefix), "big")


# Ingested files skip compression (it cost more than the write itself); compactions compress them.
_UNCOMPRESSED = rocksdict.Options(raw_mode=True)
_UNCOMPRESSED.set_compression_type(rocksdict.DBCompressionType.none())


def ingest_sorted(db: rocksdict.Rdict, scratch: Path, entries: Iterable[tuple[bytes, bytes | None]]) -> int:
    """Add (key, value) entries (value None: a delete), in ascending key order, to `db` as one table
    file written in the folder `scratch`: a bulk load that skips the memtables and the flushes they
    force. Returns how many entries (a key repeated right after itself counts once, first kept)."""
    handle, name = tempfile.mkstemp(suffix=".sst", dir=scratch)
    os.close(handle)
    writer: rocksdict.SstFileWriter | None = None
    count, last = 0, None
    try:
        for key, value in entries:
            if key == last:
                continue
            if writer is None:
                writer = rocksdict.SstFileWriter(options=_UNCOMPRESSED)
                writer.open(name)
            if value is None:
                del writer[key]
            else:
                writer[key] = value
            count += 1
            last = key
        if writer is None:
            return 0
        writer.finish()
        ingest = rocksdict.IngestExternalFileOptions()
        ingest.set_move_files(True)
        db.ingest_external_file([name], ingest)
        return count
    finally:
        Path(name).unlink(missing_ok=True)


def scan_prefix(
    db: rocksdict.Rdict, prefix: bytes, start: bytes | None = None
) -> Iterator[tuple[bytes, bytes]]:
    """Every key that starts with `prefix` (and is not before `start`), with its value, in key order."""
    it = db.iter()
    it.seek(prefix if start is None else max(prefix, start))
    while it.valid():
        key = it.key()
        if not key.startswith(prefix):
            return
        yield key, it.value()
        it.next()
