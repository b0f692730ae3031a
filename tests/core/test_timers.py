"""The due-timer index: finds due timers, and stays as small as the timers that exist."""

from __future__ import annotations

from streams.core.timers import COMPACT_SLACK, TimerIndex


def test_pops_due_entries_in_order_and_keeps_the_rest() -> None:
    index = TimerIndex()
    for due, user in ((30, "c"), (10, "a"), (20, "b")):
        index.add(0, due, user, "cart_abandonment")
    assert [user for _, user, _ in index.pop_due(0, 20)] == ["a", "b"]
    assert index.next_due(0) == 30 and index.pop_due(1, 99) == []


def test_a_timer_moved_on_every_event_does_not_grow_the_index() -> None:
    """A shopper clicking all day moves the cart timer 100,000 times: one live timer, not 100,000."""
    index = TimerIndex()
    for n in range(100_000):
        index.add(0, 1_000 + n, "u1", "cart_abandonment")
        index.add(0, 5_000_000, f"other-{n % 10}", "browse_abandonment")
        index.compact()  # what the processor does before each batch
        assert len(index) <= 2 * 11 + COMPACT_SLACK
    due = index.pop_due(0, 200_000)  # superseded entries within the slack come too (callers skip them)
    assert due[-1] == (100_999, "u1", "cart_abandonment") and len(due) <= COMPACT_SLACK + 1


def test_compaction_keeps_every_live_timer() -> None:
    index = TimerIndex()
    for n in range(500):
        for moved in range(5):  # each move supersedes the entry before it
            index.add(n % 3, n + moved, f"u{n}", "win_back")
    index.compact()
    assert len(index) == 500  # every partition was over its slack: only live timers are left
    assert sorted(e for p in range(3) for e in index.pop_due(p, 10_000)) == sorted(
        (n + 4, f"u{n}", "win_back") for n in range(500)
    )
