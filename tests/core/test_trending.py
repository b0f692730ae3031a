"""Trending items: decayed counts equal the textbook sum, in O(1) per event, across a restart."""

from __future__ import annotations

import math
import random

import pytest

from streams.core.trending import WEIGHTS, Trending

HOUR = 3_600_000


def brute_force(events: list[tuple[str, str, int]], half_life: int) -> dict[str, float]:
    now = max(ts for _, _, ts in events)
    out: dict[str, float] = {}
    for item, kind, ts in events:
        out[item] = out.get(item, 0.0) + WEIGHTS[kind] * math.exp2(-(now - ts) / half_life)
    return out


def test_scores_are_decayed_counts_as_of_the_latest_event_late_events_included() -> None:
    rng = random.Random(3)
    ts = 1_700_000_000_000
    events = []
    for _ in range(5_000):
        ts += rng.randint(0, 120_000)
        late = ts - rng.randint(0, 600_000) if rng.random() < 0.1 else ts
        events.append((f"i{rng.randint(0, 200)}", rng.choice(["view", "view", "add_to_cart"]), late))
    trending = Trending(HOUR)
    for event in events:
        trending.add(*event)
    expected = brute_force(events, HOUR)
    best = sorted(expected.items(), key=lambda kv: (-kv[1], kv[0]))[:10]
    got = trending.top(10)
    assert [item for item, _ in got] == [item for item, _ in best]
    for (_, score), (_, want) in zip(got, best, strict=True):
        assert score == pytest.approx(want, rel=1e-9, abs=1e-6)


def test_weights_are_renormalised_over_months_without_overflow() -> None:
    trending = Trending(HOUR)
    for day in range(120):
        trending.add("steady", "view", 1_700_000_000_000 + day * 24 * HOUR)
    [(item, score)] = trending.top(1)
    assert item == "steady" and math.isfinite(score) and score == pytest.approx(1.0, rel=1e-6)


def test_wire_round_trip_and_exclusions() -> None:
    trending = Trending(HOUR)
    for n, item in enumerate(["a", "b", "b", "c", "c", "c"]):
        trending.add(item, "view", 1_000 + n)
    again = Trending.from_wire(trending.to_wire())
    assert again.top(3) == trending.top(3)
    assert [i for i, _ in trending.top(2, exclude={"c"})] == ["b", "a"]


def test_top_is_the_best_by_count_then_id_with_ties_and_exclusions() -> None:
    trending = Trending(HOUR)
    for n in range(300):  # many equal counts: ties at the cut are broken by item id
        trending.add_scaled(f"i{n % 97:02d}", float(n % 7))
    ranked = sorted(trending.counts.items(), key=lambda kv: (-kv[1], kv[0]))
    for n, exclude in [
        (10, frozenset()),
        (5, frozenset({ranked[0][0], ranked[3][0]})),
        (200, frozenset()),
        (0, frozenset()),
    ]:
        expected = [(item, round(score, 6)) for item, score in ranked if item not in exclude][:n]
        assert trending.top(n, exclude) == expected
    assert Trending(HOUR).top(5) == []
