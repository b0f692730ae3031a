"""The caps every user state respects whatever arrives (docs/state.md)."""

from __future__ import annotations

from streams.core.state import StateLimits, UserState
from streams.core.triggers import FIRED_HISTORY, WATCHED_ITEMS

TRIGGER_TIMERS = 3  # cart, browse, win-back
EVENT_KINDS = 7  # four click types, three order statuses


def assert_bounded(state: UserState, limits: StateLimits) -> None:
    assert len(state.recent) <= limits.recent_events
    assert len(state.cart) <= limits.cart_lines
    assert all(len(line.chunks) <= limits.chunks_per_line for line in state.cart.values())
    assert len(state.purchases) <= limits.purchases
    assert len(state.watch) <= WATCHED_ITEMS and len(state.fired) <= FIRED_HISTORY
    assert len(state.timers) <= TRIGGER_TIMERS and len(state.counters) <= EVENT_KINDS
    assert len(state.seq) <= 2  # one sequence per input topic
