"""Hourly series per key from demand events: the partitions added up, complete hours only.

Each input partition emits its windows in order of their end, a window's `total` after its other
keys, and nothing for an empty one (see streams/core/demand.py); the worker writes them to the
`demand` partition of the same number, so a reader sees each input partition's windows in that
order. An hour is complete once every input partition has sent the total of a window ending at or
after it; a key an hour's events do not mention counted zero there.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from streams.core.config import HOUR
from streams.core.demand import MEASURES


@dataclass(frozen=True, slots=True)
class HourlySeries:
    key: str  # "<scope>:<key>", e.g. "total:all", "category:books"
    start: int  # event time of the first hour, epoch ms
    values: np.ndarray  # one count per hour, the last one complete

    @property
    def end(self) -> int:
        return self.start + len(self.values) * HOUR


@dataclass(slots=True)
class HourlyDemand:
    """Adds demand events up as they come: one count per key and hour, over every partition."""

    measure: str = "orders"
    scopes: tuple[str, ...] = ("total", "category")
    partitions: int | None = None  # the input partition count; None: the partitions seen so far
    counts: dict[str, dict[int, int]] = field(default_factory=dict)  # key -> hour start -> count
    last_end: dict[int, int] = field(default_factory=dict)  # partition -> latest window end it emitted
    first: int | None = None  # the first hour's start

    def __post_init__(self) -> None:
        if self.measure not in MEASURES:
            raise ValueError(f"unknown measure {self.measure!r}: choose from {', '.join(MEASURES)}")

    def add(self, value: dict[str, Any]) -> None:
        if value["window_size_ms"] != HOUR or value["window_hop_ms"] != HOUR:
            return  # hopping windows overlap: only the tumbling hours make a series
        partition, start = value["partition"], value["window_start"]
        if value["scope"] == "total":  # a window's last event: every key of the window came before it
            self.last_end[partition] = max(self.last_end.get(partition, 0), value["window_end"])
        self.first = start if self.first is None else min(self.first, start)
        if value["scope"] in self.scopes:
            per_hour = self.counts.setdefault(f"{value['scope']}:{value['key']}", {})
            per_hour[start] = per_hour.get(start, 0) + value[self.measure]

    def complete_until(self) -> int | None:
        """The end of the last hour every partition has closed (None: not every one has spoken)."""
        if not self.last_end or (self.partitions is not None and len(self.last_end) < self.partitions):
            return None
        return min(self.last_end.values())

    def forget_before(self, ts: int) -> None:
        """Drop hours before `ts` (a follower keeps a bounded history)."""
        if self.first is None or ts <= self.first:
            return
        self.first = ts - ts % HOUR
        for per_hour in self.counts.values():
            for start in [s for s in per_hour if s < self.first]:
                del per_hour[start]

    def series(self, until: int | None = None) -> dict[str, HourlySeries]:
        """Every key's counts from the first hour up to `until` (default: the complete hours)."""
        until = self.complete_until() if until is None else until
        if self.first is None or until is None:
            return {}
        hours = max(0, (until - self.first) // HOUR)
        out = {}
        for key, per_hour in sorted(self.counts.items()):
            values = np.zeros(hours, dtype=float)
            for start, n in per_hour.items():
                if self.first <= start < until:
                    values[(start - self.first) // HOUR] = n
            out[key] = HourlySeries(key, self.first, values)
        return out


def hourly_series(
    demand: Iterable[dict[str, Any]], measure: str = "orders", scopes: tuple[str, ...] = ("total", "category")
) -> dict[str, HourlySeries]:
    """One series per key of the given scopes, from the tumbling one-hour windows among `demand`."""
    hourly = HourlyDemand(measure, scopes)
    for value in demand:
        hourly.add(value)
    return hourly.series()
