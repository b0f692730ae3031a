"""Trending items counted in the stream: exponentially decayed view/cart counts in event time.

Kept per partition so that its value depends only on that partition's own event order; this is
what lets a replay of the same log reproduce the same fallback recommendations.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

WEIGHTS = {"view": 1.0, "add_to_cart": 3.0}


@dataclass(slots=True)
class Trending:
    half_life_ms: int
    capacity: int = 500
    counts: dict[str, float] = field(default_factory=dict)  # item -> count as of `clock`
    clock: int = 0  # event time the counts are expressed at

    def add(self, item_id: str, kind: str, ts: int) -> None:
        weight = WEIGHTS.get(kind)
        if weight is None:
            return
        if ts > self.clock:
            # Rescaling everything is O(capacity); done at most once per distinct timestamp.
            factor = math.exp2(-(ts - self.clock) / self.half_life_ms) if self.clock else 1.0
            if factor < 1.0:
                for key in self.counts:
                    self.counts[key] *= factor
            self.clock = ts
            self.add_scaled(item_id, weight)
        else:
            self.add_scaled(item_id, weight * math.exp2(-(self.clock - ts) / self.half_life_ms))

    def add_scaled(self, item_id: str, weight: float) -> None:
        self.counts[item_id] = self.counts.get(item_id, 0.0) + weight
        if len(self.counts) > self.capacity * 2:
            keep = sorted(self.counts.items(), key=lambda kv: (-kv[1], kv[0]))[: self.capacity]
            self.counts = dict(keep)

    def top(self, n: int, exclude: set[str] | frozenset[str] = frozenset()) -> list[tuple[str, float]]:
        ranked = sorted(self.counts.items(), key=lambda kv: (-kv[1], kv[0]))
        return [(item, round(score, 6)) for item, score in ranked if item not in exclude][:n]

    def to_wire(self) -> dict[str, Any]:
        return {"h": self.half_life_ms, "c": self.counts, "t": self.clock}

    @classmethod
    def from_wire(cls, raw: dict[str, Any]) -> Trending:
        return cls(half_life_ms=raw["h"], counts=raw["c"], clock=raw["t"])
