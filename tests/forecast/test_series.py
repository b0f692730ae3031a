from __future__ import annotations

import numpy as np
import pytest

from streams.core.config import HOUR, MINUTE
from streams.forecast.series import hourly_series

T0 = 1_700_000_000_000 - 1_700_000_000_000 % HOUR


def window(partition: int, hour: int, scope: str, key: str, orders: int, hop: int = HOUR) -> dict:
    start = T0 + hour * HOUR
    return {
        "partition": partition,
        "scope": scope,
        "key": key,
        "window_start": start,
        "window_end": start + HOUR,
        "window_size_ms": HOUR,
        "window_hop_ms": hop,
        "views": 1,
        "carts": 0,
        "orders": orders,
        "units": orders,
    }


def test_partitions_add_up_and_hours_without_events_count_zero() -> None:
    demand = [
        window(0, 0, "total", "all", 2),
        window(1, 0, "total", "all", 3),
        window(0, 0, "category", "books", 2),
        window(0, 2, "total", "all", 1),  # nothing in hour 1 on either partition
        window(1, 3, "total", "all", 4),
        window(0, 4, "total", "all", 9),
        window(0, 1, "total", "all", 50, hop=15 * MINUTE),  # a hopping window: not an hourly count
    ]
    series = hourly_series(demand)
    # Partition 1 has emitted up to hour 3, so hour 4 may still be incomplete there: cut before it.
    assert series["total:all"].values.tolist() == [5, 0, 1, 4]
    assert series["category:books"].values.tolist() == [2, 0, 0, 0]
    assert series["total:all"].start == T0 and series["total:all"].end == T0 + 4 * HOUR
    assert list(hourly_series(demand, scopes=("total",))) == ["total:all"]


def test_other_measures_and_bad_ones() -> None:
    demand = [window(0, 0, "total", "all", 2), window(0, 1, "total", "all", 0)]
    assert np.array_equal(hourly_series(demand, measure="views")["total:all"].values, [1, 1])
    with pytest.raises(ValueError, match="unknown measure"):
        hourly_series(demand, measure="revenue")
    assert hourly_series([]) == {}
