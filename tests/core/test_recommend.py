"""The model's view of a shopper: a batch's histories are exactly `recent_history` of each state."""

from __future__ import annotations

import random

from streams.core.events import Click
from streams.core.recommend import BatchHistories, recent_history
from streams.core.state import StateLimits, UserState, apply_event


def test_batch_histories_equal_each_states_own_history() -> None:
    rng = random.Random(11)
    limits = StateLimits(recent_events=6)
    histories = BatchHistories()
    states: dict[str, UserState | None] = {"u1": None, "u2": None}
    previous: dict[str, tuple] = {}
    reused = 0
    for n in range(400):
        user = rng.choice(sorted(states))
        ts = 1_000 * n - rng.choice([0, 0, 0, 5_500, 60_000])  # now and then out of order
        kind = rng.choice(["view", "add_to_cart", "search", "impression"])
        event = Click(f"e{n}", user, kind, ts, item_id=f"sku-{rng.randint(1, 9)}")  # type: ignore[arg-type]
        before = states[user]
        after = apply_event(before, event, limits=limits)
        if kind != "impression":  # an impression is only counted: no history asked
            history = histories.of(user, before.recent if before is not None else None, after.recent)
            assert history == recent_history(after.recent), f"event {n}"
            earlier = previous.get(user, ())
            reused += len(history) > 1 and bool(earlier) and history[-2] is earlier[-1]  # shared, not rebuilt
            previous[user] = history
        states[user] = after
    assert reused > 100  # most events extend the history before them
