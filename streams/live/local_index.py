"""The worker's due-timer and item-watcher indexes in a local RocksDB, not in Python memory.

Both indexes have an entry per user the worker owns (every shopper carries a lifecycle timer, and
up to 20 watched items), so in the heap they grew with the user base for as long as the worker
ran. Here they live in one local database under the worker's shared RocksDB memory budget
(`streams.live.rocks`): memory stays flat however many users arrive. The user states are the truth;
these are derived and rebuilt when a partition is assigned, so the database has no changelog and
no write-ahead log, and is wiped when the worker starts. Every key starts with its partition, so a
partition's entries are dropped with one range delete and rebuilt as one sorted table file that
RocksDB ingests whole (a million users' entries put one by one spent most of a recovery in
memtable inserts and the flushes they forced).

Keys are order-preserving: a partition and a due time as big-endian integers, strings escaped the
way FoundationDB's tuple layer does (NUL becomes NUL 0xFF, each string ends in NUL 0x01), so
RocksDB's byte order is Python's `(due, user, kind)` order and pops come out exactly as from
`streams.core.timers.TimerIndex`, the in-memory index an offline replay uses.
"""

from __future__ import annotations

import shutil
from collections.abc import Collection, Iterable, Iterator, Mapping
from pathlib import Path

import rocksdict

from streams.live.rocks import RocksMemory, SharedMemoryOptions, ingest_sorted, past_prefix, scan_prefix

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


class LocalIndexDB:
    """One local RocksDB for the derived indexes, opened empty."""

    def __init__(self, path: Path, memory: RocksMemory) -> None:
        shutil.rmtree(path, ignore_errors=True)
        path.parent.mkdir(parents=True, exist_ok=True)
        self._ingest_dir = path.parent  # rebuilds come as table files written beside the database
        self.db = SharedMemoryOptions(
            memory, write_buffer_size=8 * 1024 * 1024, max_write_buffer_number=2
        ).open(path)
        writes = rocksdict.WriteOptions()
        writes.disable_wal = True  # rebuilt from the states anyway
        self.db.set_write_options(writes)

    def keys_from(self, prefix: bytes) -> Iterator[bytes]:
        return (key for key, _ in scan_prefix(self.db, prefix))

    def ingest_sorted(self, entries: Iterable[tuple[bytes, bytes]]) -> int:
        """Add (key, value) entries in ascending key order as one table file; returns how many."""
        return ingest_sorted(self.db, self._ingest_dir, entries)

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
        stored states' timers), ingested as sorted table files (no per-entry reads or inserts)."""
        self.drop_partition(partition)
        timers: list[tuple[bytes, bytes]] = []
        latest: list[tuple[bytes, bytes]] = []
        earliest = None
        at = _partition(partition)
        for due, user_id, kind in entries:
            who, when = _text(user_id) + _text(kind), _due(due)
            timers.append((_TIMER + at + when + who, b""))
            latest.append((_LATEST + at + who, when))
            earliest = due if earliest is None else min(earliest, due)
        timers.sort()
        latest.sort()  # in order already when they come from a store scan: a linear pass
        count = self._local.ingest_sorted(timers)
        self._local.ingest_sorted(latest)
        if earliest is not None:
            self._earliest[partition] = earliest
        return count

    def drop_partition(self, partition: int) -> None:
        for kind in (_TIMER, _LATEST):
            prefix = kind + _partition(partition)
            self._db.delete_range(prefix, past_prefix(prefix))
        self._superseded = [k for k in self._superseded if k[1:5] != _partition(partition)]
        self._earliest.pop(partition, None)

    def __len__(self) -> int:
        return sum(1 for _ in self._local.keys_from(_TIMER))


class RocksWatchIndex:
    """Which of this worker's users watch an item (they saw it: price-drop and back-in-stock
    triggers). One entry per (partition, item, user), kept exactly as each user's capped watch
    list: every change of a state says what the user watched before it (the state it was made from)
    and after, so the index forgets items no longer watched and holds at most users x 20 entries
    whatever item ids the traffic names."""

    def __init__(self, db: LocalIndexDB) -> None:
        self._db = db.db
        self._local = db

    def note(self, partition: int, user_id: str, before: Collection[str], now: Collection[str]) -> None:
        """A user's watch list changed from `before` (what the index holds of the user) to `now`."""
        prefix, user = _WATCHED_BY + _partition(partition), _text(user_id)
        for item in set(before).difference(now):
            self._db.delete(prefix + _text(item) + user)
        for item in set(now).difference(before):
            self._db.put(prefix + _text(item) + user, b"")

    def rebuild_partition(self, partition: int, watches: Iterable[tuple[str, Collection[str]]]) -> int:
        """The partition's entries afresh from (user id, watched items) of its stored states, as one
        sorted table file; returns how many."""
        self.drop_partition(partition)
        by_item: dict[str, list[bytes]] = {}
        for user_id, items in watches:
            user = _text(user_id)
            for item in items:
                users = by_item.get(item)
                if users is None:
                    by_item[item] = [user]
                else:
                    users.append(user)
        return self._local.ingest_sorted(_sorted_keys(_WATCHED_BY + _partition(partition), by_item))

    def drop_partition(self, partition: int) -> None:
        prefix = _WATCHED_BY + _partition(partition)
        self._db.delete_range(prefix, past_prefix(prefix))

    def users(self, item_id: str, partitions: Iterable[int]) -> set[str]:
        """The users of `partitions` who watch `item_id`."""
        item = _text(item_id)
        out: set[str] = set()
        for partition in partitions:
            prefix = _WATCHED_BY + _partition(partition) + item
            out.update(_texts(key[len(prefix) :])[0] for key in self._local.keys_from(prefix))
        return out

    def __len__(self) -> int:
        return sum(1 for _ in self._local.keys_from(_WATCHED_BY))


def _sorted_keys(prefix: bytes, users_by_item: Mapping[str, list[bytes]]) -> Iterator[tuple[bytes, bytes]]:
    """(prefix + item + user, b"") for every pair, in byte order (encoded ids sort as the strings do)."""
    items = sorted((_text(item), users) for item, users in users_by_item.items())
    for item, users in items:
        head = prefix + item
        users.sort()  # already in order when they come from a store scan: a linear pass
        for user in users:
            yield head + user, b""
