"""The worker's RocksDB-backed timer and watcher indexes: the in-memory ones' answers, on disk."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streams.core.state import UserState
from streams.core.timers import TimerIndex
from streams.core.triggers import WATCHED_ITEMS, watch_item
from streams.live.local_index import LocalIndexDB, RocksTimerIndex, RocksWatchIndex, _text, _texts
from streams.live.rocks import MIB, RocksMemory

# Ids a hostile tracker can send: NUL inside, prefixes of each other, astral and combining characters.
ODD_IDS = ["u", "u\x00", "u\x00\x00x", "u\x01", "uu", "ü", "u\u0301", "😀", "\x00", "a" * 128, "u\x00\xff"]


@pytest.fixture
def local(tmp_path: Path) -> LocalIndexDB:
    return LocalIndexDB(tmp_path / "index", RocksMemory(cache_bytes=16 * MIB, write_buffer_bytes=4 * MIB))


@given(
    st.lists(st.text(max_size=6), min_size=1, max_size=4),
    st.lists(st.text(max_size=6), min_size=1, max_size=4),
)
def test_keys_sort_as_the_strings_do_and_read_back(a: list[str], b: list[str]) -> None:
    packed_a, packed_b = b"".join(map(_text, a)), b"".join(map(_text, b))
    assert _texts(packed_a) == a
    assert (packed_a < packed_b) == (a < b)


def test_pops_the_in_memory_index_order_whatever_the_ids(local: LocalIndexDB) -> None:
    """A random run of adds, moves, pops, compactions and revocations against `TimerIndex`."""
    rng = random.Random(5)
    memory, rocks = TimerIndex(), RocksTimerIndex(local)
    latest: dict[tuple[int, str, str], int] = {}

    def current(
        popped: list[tuple[int, str, str]], partition: int, before: dict
    ) -> list[tuple[int, str, str]]:
        # Superseded entries may come out of either index until compacted, and the heap may hold a
        # timer twice (set, moved, set back); callers skip both, so only live timers must agree.
        live = [e for e in popped if before.get((partition, e[1], e[2])) == e[0]]
        return [e for n, e in enumerate(live) if e not in live[:n]]

    for step in range(4_000):
        partition = rng.randrange(3)
        action = rng.random()
        if action < 0.6:
            due, user, kind = (
                rng.randrange(-5, 2_000),
                rng.choice(ODD_IDS),
                rng.choice(["cart", "win_back", "k\x00"]),
            )
            memory.add(partition, due, user, kind)
            rocks.add(partition, due, user, kind)
            latest[(partition, user, kind)] = due
        elif action < 0.85:
            now = rng.randrange(0, 2_000)
            before = dict(latest)
            from_memory, from_rocks = memory.pop_due(partition, now), rocks.pop_due(partition, now)
            assert current(from_rocks, partition, before) == current(from_memory, partition, before), step
            for _, user, kind in current(from_memory, partition, before):
                del latest[(partition, user, kind)]
        elif action < 0.97:
            memory.compact()
            rocks.compact()
            for p in range(3):
                assert rocks.next_due(p) == (
                    min((d for (q, _, _), d in latest.items() if q == p), default=None)
                )
        else:
            memory.drop_partition(partition)
            rocks.drop_partition(partition)
            latest = {key: due for key, due in latest.items() if key[0] != partition}
    rocks.compact()
    assert len(rocks) == len(latest)


def test_a_timer_moved_on_every_event_leaves_one_entry(local: LocalIndexDB) -> None:
    index = RocksTimerIndex(local)
    for n in range(20_000):
        index.add(0, 1_000 + n, "u1", "cart_abandonment")
        index.compact()
    assert len(index) == 1 and index.pop_due(0, 10**9) == [(20_999, "u1", "cart_abandonment")]
    assert index.next_due(0) is None


def test_watchers_follow_each_users_capped_watch_list(local: LocalIndexDB) -> None:
    index = RocksWatchIndex(local)
    states = [UserState(user) for user in ODD_IDS[:3]]
    for ts in range(3_000):  # every event names an item nobody saw before
        state = states[ts % 3]
        before = set(state.watch)
        watch_item(state, f"item-{ts}\x00", 1.0, True, ts)
        index.note(0, state.user_id, before, state.watch.keys())
    assert len(index) == 3 * WATCHED_ITEMS
    assert index.users("item-2999\x00", [0]) == {ODD_IDS[2]} and not index.users("item-0\x00", [0])
    assert not index.users("item-2999", [0])  # a prefix of a watched id is not watched
    assert not index.users("item-2999\x00", [1])  # another partition's users are not these
    before = set(states[2].watch)
    states[2].watch.clear()
    index.note(0, states[2].user_id, before, ())
    assert not index.users("item-2999\x00", [0]) and len(index) == 2 * WATCHED_ITEMS


def test_a_new_worker_starts_from_an_empty_index(tmp_path: Path) -> None:
    memory = RocksMemory(cache_bytes=16 * MIB, write_buffer_bytes=4 * MIB)
    first = LocalIndexDB(tmp_path / "index", memory)
    RocksTimerIndex(first).add(0, 5, "u", "cart")
    first.close()
    assert RocksTimerIndex(LocalIndexDB(tmp_path / "index", memory)).next_due(0) is None


def test_a_partition_rebuilt_from_a_table_file_answers_as_one_built_by_adds(tmp_path: Path) -> None:
    memory = RocksMemory(cache_bytes=16 * MIB, write_buffer_bytes=4 * MIB)
    by_adds = RocksTimerIndex(LocalIndexDB(tmp_path / "adds", memory))
    rebuilt = RocksTimerIndex(LocalIndexDB(tmp_path / "rebuilt", memory))
    rng = random.Random(9)
    entries = [(rng.randrange(-50, 50_000), user, kind) for user in ODD_IDS for kind in ("cart", "lifecycle")]
    entries += [(rng.randrange(50_000), f"u{n}", "cart") for n in range(25_000)]
    for due, user, kind in entries:
        by_adds.add(3, due, user, kind)
    rebuilt.add(3, 7, "gone", "cart")  # a rebuild starts the partition afresh
    rebuilt.add(4, 7, "other partition", "cart")
    assert rebuilt.rebuild_partition(3, iter(entries)) == len(entries)
    assert rebuilt.next_due(3) == by_adds.next_due(3) == min(due for due, _, _ in entries)
    rebuilt.add(3, 60_000, ODD_IDS[0], "cart")  # a later move supersedes the rebuilt entry
    by_adds.add(3, 60_000, ODD_IDS[0], "cart")
    for index in (rebuilt, by_adds):
        index.compact()
    assert rebuilt.pop_due(3, 10**9) == by_adds.pop_due(3, 10**9)
    assert rebuilt.pop_due(4, 10**9) == [(7, "other partition", "cart")]


def test_a_rebuilt_partition_watches_as_one_noted_and_is_dropped_whole(tmp_path: Path) -> None:
    memory = RocksMemory(cache_bytes=16 * MIB, write_buffer_bytes=4 * MIB)
    noted = RocksWatchIndex(LocalIndexDB(tmp_path / "noted", memory))
    rebuilt = RocksWatchIndex(LocalIndexDB(tmp_path / "rebuilt", memory))
    states = [UserState(user) for user in ODD_IDS]
    for ts in range(400):
        watch_item(states[ts % len(states)], f"item-{ts % 37}\x00", 1.0, True, ts)
    for state in states:
        noted.note(2, state.user_id, (), state.watch.keys())
    rebuilt.note(2, "gone", (), ["item-1\x00"])  # a rebuild starts the partition afresh
    rebuilt.note(5, "other", (), ["item-1\x00"])
    shuffled = [(s.user_id, list(s.watch)) for s in states]
    random.Random(3).shuffle(shuffled)  # in any order, not only a store's
    assert rebuilt.rebuild_partition(2, shuffled) == len(noted) > 0
    for item in (f"item-{n}\x00" for n in range(37)):
        assert rebuilt.users(item, [2]) == noted.users(item, [2])
    assert rebuilt.users("item-1\x00", [2, 5]) == noted.users("item-1\x00", [2]) | {"other"}
    before = set(states[0].watch)
    states[0].watch.clear()  # and it follows later changes the same way
    for index in (noted, rebuilt):
        index.note(2, states[0].user_id, before, ())
    assert len(rebuilt) == len(noted) + 1
    assert rebuilt.users("item-0\x00", [2]) == noted.users("item-0\x00", [2])
    rebuilt.drop_partition(2)
    assert len(rebuilt) == 1 and rebuilt.users("item-1\x00", [2, 5]) == {"other"}
    assert rebuilt.rebuild_partition(2, []) == 0
