"""One input partition's tables in one local RocksDB, written a checkpoint at a time.

A partition task keeps its users' states (each with its latest recommendation) and its partition
state here, each table under its own one-byte key prefix, beside the changelog offset
each table's local copy has reached. A checkpoint's writes and those offsets go in one RocksDB
write batch, so after a crash the database holds exactly the changelog up to the stored offsets,
never part of a checkpoint: recovery reads each changelog from its stored offset on.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path

import rocksdict

from streams.config import PARTITION_TABLE, STATE_TABLE
from streams.live.rocks import RocksMemory, SharedMemoryOptions, ingest_sorted, past_prefix, scan_prefix

TABLE_PREFIX = {STATE_TABLE: b"s", PARTITION_TABLE: b"p"}
_OFFSET = b"\x00o"  # + table name: the changelog offset of the last record applied locally

_UNLOGGED = rocksdict.WriteOptions()
_UNLOGGED.disable_wal = True

# A checkpoint's writes per table: key -> value (None: delete).
TableWrites = Mapping[str, Mapping[bytes, bytes | None]]


class UnknownTable(KeyError):
    """A table name that has no key prefix in a partition store."""


def _prefix(table: str) -> bytes:
    try:
        return TABLE_PREFIX[table]
    except KeyError:
        raise UnknownTable(
            f"no table {table!r} in a partition store (known: {sorted(TABLE_PREFIX)})"
        ) from None


class PartitionStore:
    def __init__(self, path: Path, memory: RocksMemory, write_buffer_bytes: int = 8 * 1024 * 1024) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.db = SharedMemoryOptions(
            memory, write_buffer_size=write_buffer_bytes, max_write_buffer_number=2
        ).open(path)

    def get(self, table: str, key: bytes) -> bytes | None:
        value = self.db.get(_prefix(table) + key)
        return None if value is None else bytes(value)

    def items(self, table: str) -> Iterator[tuple[bytes, bytes]]:
        """Every key (without its prefix) and value of one table, in key order."""
        prefix = _prefix(table)
        for key, value in scan_prefix(self.db, prefix):
            yield bytes(key[len(prefix) :]), bytes(value)

    def values(self, table: str) -> Iterator[bytes]:
        """Every value of one table, in key order (a scan without the keys, for rebuilding indexes)."""
        prefix = _prefix(table)
        bounds = rocksdict.ReadOptions()
        bounds.set_iterate_upper_bound(past_prefix(prefix))
        # A generator, so `bounds` lives as long as the scan: RocksDB reads the bound it points to.
        yield from self.db.values(from_key=prefix, read_opt=bounds)

    def changelog_offset(self, table: str) -> int:
        """Offset of the last changelog record of `table` the local copy holds (-1: none)."""
        raw = self.db.get(_OFFSET + table.encode())
        return -1 if raw is None else int.from_bytes(raw, "big", signed=True)

    def write(self, writes: TableWrites, changelog_offsets: Mapping[str, int], logged: bool = True) -> None:
        """A checkpoint's writes and the changelog offsets they reach, atomically. `logged=False`
        skips RocksDB's write-ahead log (a restore: a crash loses the batch and its offsets together,
        so the next restore reads it again); `flush` before any logged write follows."""
        batch = rocksdict.WriteBatch(raw_mode=True)
        for table, rows in writes.items():
            prefix = _prefix(table)
            for key, value in rows.items():
                if value is None:
                    batch.delete(prefix + key)
                else:
                    batch.put(prefix + key, value)
        for table, offset in changelog_offsets.items():
            _prefix(table)  # an offset of a table that is not here is a caller's mistake
            batch.put(_OFFSET + table.encode(), offset.to_bytes(8, "big", signed=True))
        self.db.write(batch, None if logged else _UNLOGGED)

    def load(self, writes: TableWrites, changelog_offsets: Mapping[str, int]) -> None:
        """`write(..., logged=False)` as a bulk load (a restore): the writes go in as one sorted table
        file, then the offsets they reach. A crash in between leaves the offsets behind the data,
        so the next restore reads those records again; `flush` before any logged write follows."""
        entries = sorted(
            (prefix + key, value)
            for table, rows in writes.items()
            for prefix in (_prefix(table),)
            for key, value in rows.items()
        )
        ingest_sorted(self.db, self.path.parent, entries)
        self.write({}, changelog_offsets, logged=False)

    def flush(self) -> None:
        """Put unlogged writes on disk: a logged write after them must never outlive them."""
        self.db.flush(wait=True)

    def estimated_keys(self) -> int:
        return self.db.property_int_value("rocksdb.estimate-num-keys") or 0

    def close(self) -> None:
        self.db.close()
