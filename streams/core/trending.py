"""Trending items counted in the stream: exponentially decayed view/cart counts in event time.

Kept per partition so that its value depends only on that partition's own event order; this is
what lets a replay of the same log reproduce the same fallback recommendations.
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass, field
from typing import Any

WEIGHTS = {"view": 1.0, "add_to_cart": 3.0}


RENORMALIZE_AFTER = 64  # half-lives between the reference time and now before weights are rescaled


@dataclass(slots=True)
class Trending:
    half_life_ms: int
    capacity: int = 500
    # item -> decayed count, expressed at the reference time `ref`: an event at `ts` adds its weight
    # times 2^((ts - ref) / half_life). Adding is O(1); only `top` converts to "as of `clock`".
    counts: dict[str, float] = field(default_factory=dict)
    clock: int = 0  # latest event time seen
    ref: int = 0

    def add(self, item_id: str, kind: str, ts: int) -> None:
        weight = WEIGHTS.get(kind)
        if weight is None:
            return
        if not self.counts and not self.ref:
            self.ref = ts
        if ts > self.clock:
            self.clock = ts
        half_life = self.half_life_ms
        if (self.clock - self.ref) > RENORMALIZE_AFTER * half_life:
            factor = math.exp2(-(self.clock - self.ref) / half_life)
            for key in self.counts:
                self.counts[key] *= factor
            self.ref = self.clock
        self.add_scaled(item_id, weight * math.exp2((ts - self.ref) / half_life))

    def add_scaled(self, item_id: str, weight: float) -> None:
        self.counts[item_id] = self.counts.get(item_id, 0.0) + weight
        if len(self.counts) > self.capacity * 2:
            keep = sorted(self.counts.items(), key=lambda kv: (-kv[1], kv[0]))[: self.capacity]
            self.counts = dict(keep)

    def top(self, n: int, exclude: set[str] | frozenset[str] = frozenset()) -> list[tuple[str, float]]:
        """The n most counted items (decayed to the latest event time), best first, ties by id."""
        scale = math.exp2(-(self.clock - self.ref) / self.half_life_ms)
        wanted = n + len(exclude)
        if wanted <= 0 or not self.counts:
            return []
        # The best `wanted` by (-count, item) all count at least the wanted-th largest count: that
        # bound comes from comparing floats alone (no key call per item), then only those are sorted.
        bound = heapq.nlargest(wanted, self.counts.values())[-1]
        best = sorted(
            ((item, score) for item, score in self.counts.items() if score >= bound),
            key=lambda kv: (-kv[1], kv[0]),
        )[:wanted]
        return [(item, round(score * scale, 6)) for item, score in best if item not in exclude][:n]

    def to_wire(self) -> dict[str, Any]:
        return {"h": self.half_life_ms, "c": self.counts, "t": self.clock, "r": self.ref}

    @classmethod
    def from_wire(cls, raw: dict[str, Any]) -> Trending:
        # States written before "r" existed held counts as of their clock.
        return cls(half_life_ms=raw["h"], counts=raw["c"], clock=raw["t"], ref=raw.get("r", raw["t"]))
