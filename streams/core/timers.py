"""Due timers per partition: an in-memory index over the timers kept in user states.

The states are the truth; the index only finds candidates fast (never a scan of every user per
tick). It is rebuilt from the table when a partition is assigned, and stale entries (a timer since
moved or cleared) are dropped when popped.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field


@dataclass(slots=True)
class TimerIndex:
    heaps: dict[int, list[tuple[int, str, str]]] = field(
        default_factory=dict
    )  # partition -> (due, user, kind)

    def add(self, partition: int, due: int, user_id: str, kind: str) -> None:
        heapq.heappush(self.heaps.setdefault(partition, []), (due, user_id, kind))

    def pop_due(self, partition: int, now: int) -> list[tuple[int, str, str]]:
        heap = self.heaps.get(partition)
        out = []
        while heap and heap[0][0] <= now:
            out.append(heapq.heappop(heap))
        return out

    def next_due(self, partition: int) -> int | None:
        heap = self.heaps.get(partition)
        return heap[0][0] if heap else None

    def drop_partition(self, partition: int) -> None:
        self.heaps.pop(partition, None)

    def __len__(self) -> int:
        return sum(len(h) for h in self.heaps.values())
