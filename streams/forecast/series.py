"""Hourly series per key from demand events: the partitions added up, complete hours only.

Each input partition emits its windows in order of their end and nothing for an empty one (see
streams/core/demand.py), so an hour is complete once every partition has emitted a window ending
at or after it; a key an hour's events do not mention counted zero there.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
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


def hourly_series(
    demand: Iterable[dict[str, Any]], measure: str = "orders", scopes: tuple[str, ...] = ("total", "category")
) -> dict[str, HourlySeries]:
    """One series per key of the given scopes, from the tumbling one-hour windows among `demand`."""
    if measure not in MEASURES:
        raise ValueError(f"unknown measure {measure!r}: choose from {', '.join(MEASURES)}")
    counts: dict[str, dict[int, int]] = {}
    last_end: dict[int, int] = {}  # partition -> latest window end it emitted
    first = None
    for value in demand:
        if value["window_size_ms"] != HOUR or value["window_hop_ms"] != HOUR:
            continue
        partition, start = value["partition"], value["window_start"]
        last_end[partition] = max(last_end.get(partition, 0), value["window_end"])
        first = start if first is None else min(first, start)
        if value["scope"] in scopes:
            per_hour = counts.setdefault(f"{value['scope']}:{value['key']}", {})
            per_hour[start] = per_hour.get(start, 0) + value[measure]
    if first is None:
        return {}
    complete_until = min(last_end.values())
    hours = (complete_until - first) // HOUR
    out = {}
    for key, per_hour in sorted(counts.items()):
        values = np.zeros(hours, dtype=float)
        for start, n in per_hour.items():
            if start < complete_until:
                values[(start - first) // HOUR] = n
        out[key] = HourlySeries(key, first, values)
    return out
