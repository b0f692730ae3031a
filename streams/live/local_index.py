"""The worker's due-timer and item-watcher indexes in a local RocksDB, not in Python memory.

Both indexes have an entry per user the worker owns (every shopper carries a lifecycle timer, and
up to 20 watched items), so in the heap they grew with the user base for as long as the worker
ran. Here they live in one local database under the worker's shared RocksDB memory budget
(`streams.live.rocks`): memory stays flat however many users arrive. The user states are the truth;
these are derived and rebuilt when a partition is assigned, so the database has no changelog and
no write-ahead log, and is wiped when the worker starts.

Keys are order-preserving: a partition and a due time as big-endian integers, strings escaped the
way FoundationDB's tuple layer does (NUL becomes NUL 0xFF, each string ends in NUL 0x01), so
RocksDB's byte order is Python's `(due, user, kind)` order and pops come out exactly as from
`streams.core.timers.TimerIndex`, the in-memory index an offline replay uses.
"""

from __future__ import annotations

import shutil
from collections.abc import Collection, Iterable, Iterator
from pathlib import Path

import rocksdict

from streams.live.rocks import RocksMemory, SharedMemoryOptions, scan_prefix

_TIMER, _LATEST, _WATCHED_BY = b"T", b"L", b"W"
_END = b"\x00\x01"
_DUE_OFFSET = 1 << 63  # dues as unsigned: negative ones still sort first


def _text(value: str) -> bytes:
    return value.encode("utf-8", "surrogatepass").replace(b"\x00", b"\x00\xff") + _END


def _texts(raw: bytes) -> list[str]:
    out, start, i = [], 0, 0
    while i < len(raw):
        if raw[i] == 0:
            if raw[i + 1] == 1:
                out.append(raw[start:i].replace(b"\x00\xff", b"\x00").decode("utf-8", "surrogatepass"))
                start = i = i + 2
                continue
            i += 2  # an escaped NUL
            continue
        i += 1
    return out


def _partition(partition: int) -> bytes:
    return partition.to_bytes(4, "big")


def _due(due: int) -> bytes:
    return (due + _DUE_OFFSET).to_bytes(8, "big")


def _after(prefix: bytes) -> bytes:
    """The first key past every key that starts with `prefix`."""
    return (int.from_bytes(prefix, "big") + 1).to_bytes(len(prefix), "big")


class _Batches:
    """Puts and deletes gathered in RocksDB write batches of a bounded size."""

    SIZE = 20_000

    def __init__(self, db: rocksdict.Rdict) -> None:
        self._db = db
        self._batch = rocksdict.WriteBatch(raw_mode=True)
        self._count = 0

    def __enter__(self) -> _Batches:
        return self

    def put(self, key: bytes, value: bytes) -> None:
        self._batch.put(key, value)
        self.counted(1)

    def delete(self, key: bytes) -> None:
        self._batch.delete(key)
        self.counted(1)

    @property
    def batch(self) -> rocksdict.WriteBatch:
        """For a caller's own puts and deletes, each followed by `counted` (fewer calls per entry)."""
        return self._batch

    def counted(self, entries: int) -> None:
        self._count += entries
        if self._count >= self.SIZE:
            self._flush()

    def _flush(self) -> None:
        if self._count:
            self._db.write(self._batch)
            self._batch = rocksdict.WriteBatch(raw_mode=True)
            self._count = 0

    def __exit__(self, *_: object) -> None:
        self._flush()


class _ItemKeys(dict[str, bytes]):
    """Per item id, the prefix of its watch entries: a catalogue's ids recur across its users."""

    def __missing__(self, item_id: str) -> bytes:
        key = self[item_id] = _WATCHED_BY + _text(item_id)
        return key


class LocalIndexDB:
    """One local RocksDB for the derived indexes, opened empty."""

    def __init__(self, path: Path, memory: RocksMemory) -> None:
        shutil.rmtree(path, ignore_errors=True)
        path.parent.mkdir(parents=True, exist_ok=True)
        # Larger memtables than a partition store's: a rebuild writes a million users' entries at
        # once, and small ones stall it on level-0 compactions (the shared budget still bounds them).
        self.db = SharedMemoryOptions(
            memory, write_buffer_size=16 * 1024 * 1024, max_write_buffer_number=4
        ).open(path)
        writes = rocksdict.WriteOptions()
        writes.disable_wal = True  # rebuilt from the states anyway
        self.db.set_write_options(writes)

    def keys_from(self, prefix: bytes) -> Iterator[bytes]:
        return (key for key, _ in scan_prefix(self.db, prefix))

    def estimated_keys(self) -> int:
        return self.db.property_int_value("rocksdb.estimate-num-keys") or 0

    def close(self) -> None:
        self.db.close()


class RocksTimerIndex:
    """`streams.core.timers.TimerIndex`'s interface on `LocalIndexDB`."""

    def __init__(self, db: LocalIndexDB) -> None:
        self._db = db.db
        self._local = db
        # Entries a later `add` moved, deleted at the next `compact`: within a batch an entry superseded
        # by a later event of the batch is still due as of the events before it.
        self._superseded: list[bytes] = []
        # Per partition, no entry is due before this (None: unknown). A pop seeks here rather than
        # to the partition's start, past the tombstones of every entry popped before (a queue in
        # RocksDB otherwise reads them all again on each pop), and skips the scan while nothing can
        # be due.
        self._earliest: dict[int, int] = {}

    def add(self, partition: int, due: int, user_id: str, kind: str) -> None:
        who = _text(user_id) + _text(kind)
        latest_key = _LATEST + _partition(partition) + who
        before = self._db.get(latest_key)
        if before is not None and before != _due(due):
            self._superseded.append(_TIMER + _partition(partition) + before + who)
        self._db.put(_TIMER + _partition(partition) + _due(due) + who, b"")
        self._db.put(latest_key, _due(due))
        earliest = self._earliest.get(partition)
        if earliest is not None and due < earliest:
            self._earliest[partition] = due

    def pop_due(self, partition: int, now: int) -> list[tuple[int, str, str]]:
        earliest = self._earliest.get(partition)
        if earliest is not None and earliest > now:
            return []
        prefix = _TIMER + _partition(partition)
        out = []
        for key in list(self._due_keys(partition, prefix, now)):
            due_bytes, who = key[len(prefix) : len(prefix) + 8], key[len(prefix) + 8 :]
            user, kind = _texts(who)
            latest_key = _LATEST + _partition(partition) + who
            if self._db.get(latest_key) == due_bytes:
                self._db.delete(latest_key)
            self._db.delete(key)
            out.append((int.from_bytes(due_bytes, "big") - _DUE_OFFSET, user, kind))
        return out

    def _due_keys(self, partition: int, prefix: bytes, now: int) -> Iterator[bytes]:
        """Keys due at `now`, in order; notes when the first one not yet due is."""
        limit = _due(now)
        earliest = self._earliest.get(partition)
        start = prefix if earliest is None else prefix + _due(earliest)
        for key, _ in scan_prefix(self._db, prefix, start):
            due = key[len(prefix) : len(prefix) + 8]
            if due > limit:
                self._earliest[partition] = int.from_bytes(due, "big") - _DUE_OFFSET
                return
            yield key
        self._earliest[partition] = now + 1

    def compact(self) -> None:
        for key in self._superseded:
            partition, rest = key[1:5], key[5:]
            due, who = rest[:8], rest[8:]
            if self._db.get(_LATEST + partition + who) != due:
                self._db.delete(key)
        self._superseded.clear()

    def next_due(self, partition: int) -> int | None:
        prefix = _TIMER + _partition(partition)
        earliest = self._earliest.get(partition)
        start = prefix if earliest is None else prefix + _due(earliest)
        for key, _ in scan_prefix(self._db, prefix, start):
            return int.from_bytes(key[len(prefix) : len(prefix) + 8], "big") - _DUE_OFFSET
        return None

    def rebuild_partition(self, partition: int, entries: Iterable[tuple[int, str, str]]) -> int:
        """The partition's index afresh from (due, user, kind) entries, one per user and kind (its
        stored states' timers): written in batches, without the per-entry reads of `add`."""
        self.drop_partition(partition)
        count = 0
        earliest = None
        with _Batches(self._db) as batch:
            for due, user_id, kind in entries:
                who = _text(user_id) + _text(kind)
                batch.put(_TIMER + _partition(partition) + _due(due) + who, b"")
                batch.put(_LATEST + _partition(partition) + who, _due(due))
                count += 1
                earliest = due if earliest is None else min(earliest, due)
        if earliest is not None:
            self._earliest[partition] = earliest
        return count

    def drop_partition(self, partition: int) -> None:
        for kind in (_TIMER, _LATEST):
            prefix = kind + _partition(partition)
            self._db.delete_range(prefix, _after(prefix))
        self._superseded = [k for k in self._superseded if k[1:5] != _partition(partition)]
        self._earliest.pop(partition, None)

    def __len__(self) -> int:
        return sum(1 for _ in self._local.keys_from(_TIMER))


class RocksWatchIndex:
    """Which of this worker's users watch an item (they saw it: price-drop and back-in-stock
    triggers). One entry per (item, user), kept exactly as each user's capped watch list: every
    change of a state says what the user watched before it (the state it was made from) and after,
    so the index forgets items no longer watched and holds at most users x 20 entries whatever item
    ids the traffic names."""

    def __init__(self, db: LocalIndexDB) -> None:
        self._db = db.db
        self._local = db

    def note(self, user_id: str, before: Collection[str], now: Collection[str]) -> None:
        """A user's watch list changed from `before` (what the index holds of the user) to `now`."""
        user = _text(user_id)
        for item in set(before).difference(now):
            self._db.delete(_WATCHED_BY + _text(item) + user)
        for item in set(now).difference(before):
            self._db.put(_WATCHED_BY + _text(item) + user, b"")

    def add_unindexed(self, watches: Iterable[tuple[str, Collection[str]]]) -> None:
        """(user id, watched items) of users the index holds nothing of yet, in batches."""
        self._write(watches, remove=False)

    def forget(self, watches: Iterable[tuple[str, Collection[str]]]) -> None:
        """Remove (user id, watched items) the index holds, in batches."""
        self._write(watches, remove=True)

    def _write(self, watches: Iterable[tuple[str, Collection[str]]], remove: bool) -> None:
        keys = _ItemKeys()
        with _Batches(self._db) as batches:
            for user_id, items in watches:
                user = _text(user_id)
                batch = batches.batch
                for item in items:
                    if remove:
                        batch.delete(keys[item] + user)
                    else:
                        batch.put(keys[item] + user, b"")
                batches.counted(len(items))

    def users(self, item_id: str) -> set[str]:
        prefix = _WATCHED_BY + _text(item_id)
        return {_texts(key[len(prefix) :])[0] for key in self._local.keys_from(prefix)}

    def __contains__(self, item_id: object) -> bool:
        if not isinstance(item_id, str):
            return False
        return next(self._local.keys_from(_WATCHED_BY + _text(item_id)), None) is not None

    def __len__(self) -> int:
        return sum(1 for _ in self._local.keys_from(_WATCHED_BY))
