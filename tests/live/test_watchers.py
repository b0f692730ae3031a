"""The watch index follows the capped watch lists in the states, whatever item ids arrive."""

from __future__ import annotations

from streams.core.state import UserState
from streams.core.triggers import WATCHED_ITEMS, watch_item
from streams.live.watchers import WatchIndex


def test_follows_each_users_watch_list() -> None:
    index = WatchIndex()
    state = UserState("u1")
    watch_item(state, "sku-1", 10.0, True, 1)
    index.note(state)
    assert index.users("sku-1") == {"u1"} and "sku-1" in index
    state.watch.clear()
    index.note(state)
    assert "sku-1" not in index and len(index) == 0


def test_a_stream_of_new_item_ids_keeps_it_bounded() -> None:
    index = WatchIndex()
    states = [UserState(f"u{n}") for n in range(3)]
    for ts in range(10_000):  # every event names an item nobody saw before
        state = states[ts % 3]
        watch_item(state, f"item-{ts}", 1.0, True, ts)
        index.note(state)
    assert len(index) == 3 * WATCHED_ITEMS
    assert index.users("item-9999") == {"u0"} and "item-0" not in index
