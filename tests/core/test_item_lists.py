from __future__ import annotations

import math
import random
from collections.abc import Sequence

import pytest

from streams.core.catalog import CatalogItem
from streams.core.item_lists import shop_bought_together, shop_trending, similar_items
from streams.core.listing import ListQuery
from streams.core.trending import WEIGHTS, Trending

HOUR = 3_600_000


def test_shop_trending_is_the_decayed_count_over_every_partition() -> None:
    rng = random.Random(5)
    events = [
        (f"i{rng.randrange(30)}", rng.choice(("view", "add_to_cart", "search")), rng.randrange(50 * HOUR))
        for _ in range(2000)
    ]
    parts = {p: Trending(HOUR) for p in range(4)}
    for n, (item, kind, ts) in enumerate(sorted(events, key=lambda e: e[2])):
        parts[n % 4].add(item, kind, ts)
    now = max(ts for _, kind, ts in events if kind in WEIGHTS)
    expected: dict[str, float] = {}
    for item, kind, ts in events:
        if kind in WEIGHTS:
            expected[item] = expected.get(item, 0.0) + WEIGHTS[kind] * math.exp2((ts - now) / HOUR)
    ranked = shop_trending(parts)
    assert {c.item_id for c in ranked} == set(expected)
    for candidate in ranked:
        assert candidate.score == pytest.approx(expected[candidate.item_id], rel=1e-6, abs=1e-6)
        assert candidate.reason == "trending"
    scores = [c.score for c in ranked]
    assert scores == sorted(scores, reverse=True)
    assert shop_trending(dict(reversed(list(parts.items())))) == ranked  # wherever the parts come from
    assert shop_trending({}) == []


def test_shop_bought_together_sums_the_partitions() -> None:
    ranked = shop_bought_together({0: {"b": 2, "c": 1}, 3: {"c": 4, "a": 1}, 1: {}})
    assert [(c.item_id, c.score, c.reason, c.detail) for c in ranked] == [
        ("c", 5.0, "bought_together", {"count": 5}),
        ("b", 2.0, "bought_together", {"count": 2}),
        ("a", 1.0, "bought_together", {"count": 1}),
    ]


class LineSpace:
    """Items 0..n-1 on a line: the closer the number, the more similar."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.asked: list[int] = []

    def __contains__(self, item_id: object) -> bool:
        return isinstance(item_id, str) and 0 <= int(item_id) < self.n

    def neighbours(self, item_id: str, k: int, exclude: Sequence[str] = ()) -> list[tuple[str, float]]:
        self.asked.append(k)
        others = [str(i) for i in range(self.n) if str(i) != item_id and str(i) not in exclude]
        ranked = sorted(others, key=lambda o: (abs(int(o) - int(item_id)), o))[:k]
        return [(o, 1.0 / (1 + abs(int(o) - int(item_id)))) for o in ranked]

    def similarities(self, item_id: str, others: Sequence[str]) -> list[float]:
        return [1.0 / (1 + abs(int(o) - int(item_id))) for o in others]


def test_similar_items_asks_for_more_while_filters_leave_too_few() -> None:
    space = LineSpace(1000)
    catalog = {str(i): CatalogItem(str(i), 0, category="far" if i >= 900 else "near") for i in range(1000)}
    ranked = similar_items(space, "10", ListQuery(n=5), catalog)
    assert [c.item_id for c in ranked[:3]] == ["11", "9", "12"] and space.asked == [55]
    space.asked.clear()
    ranked = similar_items(space, "10", ListQuery(n=5, category="far"), catalog)
    assert sum(1 for c in ranked if catalog[c.item_id].category == "far") >= 5
    assert space.asked == [55, 110, 220, 440, 880, 1760]
    assert {c.reason for c in ranked} == {"similar"}
