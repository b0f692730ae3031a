"""Assigning a partition: its store restored, its users' timers and watch lists indexed, whether the
restore filled an empty store or caught up a kept one (real RocksDB, a restore without a broker)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from streams.config import STATE_TABLE
from streams.core.processor import Processor
from streams.core.rules import RulesConfig
from streams.core.state import UserState
from streams.core.triggers import watch_item
from streams.live.local_index import LocalIndexDB, RocksTimerIndex, RocksWatchIndex
from streams.live.partition_store import PartitionStore
from streams.live.partitions import OwnedPartitions
from streams.live.restore import Observe
from streams.live.rocks import MIB, RocksMemory
from streams.live.tables import decode_state, encode_state

USERS = 3_000  # over one write batch of index entries, under FIELDS_IN_MEMORY


def states(version: int) -> dict[bytes, bytes | None]:
    out: dict[bytes, bytes | None] = {}
    for n in range(USERS):
        state = UserState(f"u{n}")
        for k in range(n % 4):
            watch_item(state, f"item-{(n + k + version) % 50}", 1.0, True, k)
        if n % 3:
            state.timers["cart_abandonment"] = 1_000 * n + version
        out[state.user_id.encode()] = encode_state(state)
    return out


class ChangelogRestore:
    """Loads given changelog chunks as `streams.live.restore.restore_partition` does."""

    def __init__(self, chunks: list[Mapping[bytes, bytes | None]]) -> None:
        self.chunks = chunks
        self.offset = -1

    def __call__(self, store: PartitionStore, partition: int, observe: Observe) -> int:
        for rows in self.chunks:
            self.offset += len(rows)
            observe(STATE_TABLE, rows)
            store.load({STATE_TABLE: rows}, {STATE_TABLE: self.offset})
        store.flush()
        return sum(len(rows) for rows in self.chunks)


def owned(path: Path) -> OwnedPartitions:
    memory = RocksMemory(cache_bytes=32 * MIB, write_buffer_bytes=8 * MIB)
    local = LocalIndexDB(path / "index", memory)
    processor = Processor(None, RulesConfig(enabled_triggers=()))
    return OwnedPartitions(
        path / "partitions", memory, processor, RocksTimerIndex(local), RocksWatchIndex(local), 4 * MIB
    )


def expected_index(
    rows: Mapping[bytes, bytes | None],
) -> tuple[list[tuple[int, str, str]], dict[str, set[str]]]:
    """From whole decoded states: the timers in pop order and each item's watchers."""
    timers: list[tuple[int, str, str]] = []
    watchers: dict[str, set[str]] = {}
    for raw in rows.values():
        if raw is None:
            continue
        state = decode_state(raw)
        timers += [(due, state.user_id, kind) for kind, due in state.timers.items()]
        for item in state.watch:
            watchers.setdefault(item, set()).add(state.user_id)
    return sorted(timers), watchers


def test_an_empty_store_is_indexed_from_the_restored_records_and_a_kept_one_from_itself(
    tmp_path: Path,
) -> None:
    first, second = states(0), states(1)
    second[b"u7"] = None  # deleted since
    latest = {**first, **second}
    for name, chunks in (("fresh", [first, second]), ("kept", [first])):
        partitions = owned(tmp_path / name)
        restore = ChangelogRestore(chunks)
        partitions.assign(3, restore)
        if name == "kept":  # restarted on its disk: the changelog has moved on since
            partitions.revoke(3)
            restore.chunks = [second]
            partitions.assign(3, restore)
        timers, watchers = expected_index(latest)
        assert partitions.timers.pop_due(3, 10**12) == timers
        assert b"u7" not in dict(partitions.tasks[3].store.items(STATE_TABLE))
        for item, users in watchers.items():
            assert partitions.watchers.users(item, [3]) == users, (name, item)
        assert partitions.watchers.users("item-1", [2]) == set()  # another partition's
        partitions.revoke(3)
        assert partitions.watchers.users("item-1", [3]) == set()
        partitions.close()
