"""Items bought together, counted in the stream: how many times two items were bought by one shopper
within a week of each other (in one order, or in two).

Kept per partition, like trending, so that the counts depend only on that partition's own event
order and a replay of the same log reproduces them. Bounded: past twice `capacity` pairs, only the
`capacity` most counted pairs are kept (ties by the items' ids), as trending keeps its items.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

WINDOW_MS = 7 * 24 * 3600 * 1000  # an earlier purchase this recent pairs with a new order's items
ITEMS_PER_ORDER = 20  # distinct items of one order that are paired (a bulk order adds no more pairs)

Pair = tuple[str, str]  # (a, b) with a < b


@dataclass(slots=True)
class CoPurchases:
    capacity: int = 500
    counts: dict[Pair, int] = field(default_factory=dict)

    def add_order(self, items: Iterable[str], earlier: Iterable[str]) -> None:
        """Count an order: each pair of its distinct items once, and each of its items with each
        item the shopper bought earlier within the window (`earlier`, not in this order) once."""
        bought = sorted(set(items))[:ITEMS_PER_ORDER]
        before = sorted(set(earlier) - set(bought))
        for index, a in enumerate(bought):
            for b in bought[index + 1 :]:
                self._count(a, b)
            for b in before:
                self._count(a, b)
        if len(self.counts) > 2 * self.capacity:
            keep = sorted(self.counts.items(), key=lambda kv: (-kv[1], kv[0]))[: self.capacity]
            self.counts = dict(keep)

    def _count(self, a: str, b: str) -> None:
        pair = (a, b) if a < b else (b, a)
        self.counts[pair] = self.counts.get(pair, 0) + 1

    def partners(self, item_id: str) -> dict[str, int]:
        """The items bought together with `item_id`, and how many times."""
        out: dict[str, int] = {}
        for (a, b), count in self.counts.items():
            if a == item_id:
                out[b] = count
            elif b == item_id:
                out[a] = count
        return out

    def to_wire(self) -> dict[str, Any]:
        return {"k": self.capacity, "p": [[a, b, n] for (a, b), n in self.counts.items()]}

    @classmethod
    def from_wire(cls, raw: dict[str, Any] | None) -> CoPurchases:
        if raw is None:  # partition states written before co-purchases were counted
            return cls()
        return cls(raw["k"], {(a, b): n for a, b, n in raw["p"]})
