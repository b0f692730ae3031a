"""Due timers per partition: an in-memory index over the timers kept in user states.

The states are the truth; the index only finds candidates fast (never a scan of every user per
tick). It is rebuilt from the table when a partition is assigned, and stale entries (a timer since
moved or cleared) are dropped when popped. A timer that moves on every event (a shopper's cart
timer follows each click) leaves one superseded entry per move, so `compact` drops those between
batches: the index stays proportional to the timers that exist, whatever the traffic.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from typing import Protocol


class Timers(Protocol):
    """What the processor needs of a due-timer index: `TimerIndex` in memory (offline replays), or a
    worker's RocksDB-backed one (`streams.live.local_index`), which pops in the same order."""

    def add(self, partition: int, due: int, user_id: str, kind: str) -> None: ...

    def pop_due(self, partition: int, now: int) -> list[tuple[int, str, str]]: ...

    def compact(self) -> None: ...

    def next_due(self, partition: int) -> int | None: ...

    def drop_partition(self, partition: int) -> None: ...


COMPACT_SLACK = 64  # superseded entries tolerated per partition beyond one per live timer


@dataclass(slots=True)
class TimerIndex:
    heaps: dict[int, list[tuple[int, str, str]]] = field(
        default_factory=dict
    )  # partition -> (due, user, kind)
    # partition -> (user, kind) -> the due added last: the state's timer, unless it was since cleared
    latest: dict[int, dict[tuple[str, str], int]] = field(default_factory=dict)

    def add(self, partition: int, due: int, user_id: str, kind: str) -> None:
        heapq.heappush(self.heaps.setdefault(partition, []), (due, user_id, kind))
        self.latest.setdefault(partition, {})[(user_id, kind)] = due

    def pop_due(self, partition: int, now: int) -> list[tuple[int, str, str]]:
        heap = self.heaps.get(partition)
        if not heap or heap[0][0] > now:
            return []  # asked at every event: mostly nothing is due
        latest = self.latest.get(partition, {})
        out = []
        while heap and heap[0][0] <= now:
            due, user, kind = entry = heapq.heappop(heap)
            if latest.get((user, kind)) == due:
                del latest[(user, kind)]
            out.append(entry)
        return out

    def compact(self) -> None:
        """Drop superseded entries. Only between batches: within a batch an entry superseded by a
        later event of the batch is still due as of the events before it."""
        for partition, heap in self.heaps.items():
            latest = self.latest.get(partition, {})
            if len(heap) > 2 * len(latest) + COMPACT_SLACK:
                heap[:] = [(due, user, kind) for (user, kind), due in latest.items()]
                heapq.heapify(heap)

    def next_due(self, partition: int) -> int | None:
        heap = self.heaps.get(partition)
        return heap[0][0] if heap else None

    def drop_partition(self, partition: int) -> None:
        self.heaps.pop(partition, None)
        self.latest.pop(partition, None)

    def __len__(self) -> int:
        return sum(len(h) for h in self.heaps.values())
