"""Acknowledge each topic-partition's events in the order they were delivered.

Faust commits the first consecutive run of acknowledged offsets. Its check that the run starts at the
committed offset is off by one, and absent before a partition's first commit, so an event acked while
an earlier one of its partition is still being processed can let the commit pass the earlier one,
which a crash then loses. Held events are processed in offset order already; what overtakes them is
bad input, dead-lettered at once. So every delivered event takes a reference here and gives it back
only once every event delivered before it on its topic-partition has given back its own.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from faust.types import EventT


@dataclass(slots=True)
class _Tracked:
    event: EventT
    done: bool = False


class AckOrder:
    def __init__(self, ack: Callable[[EventT], Awaitable[Any]]) -> None:
        self._ack = ack
        self._queues: dict[tuple[str, int], deque[_Tracked]] = {}
        self._by_message: dict[int, _Tracked] = {}

    def track(self, event: EventT) -> None:
        """Called on delivery: the event's offset is not committed before `done(event)` and the
        `done` of every event delivered before it on its topic-partition."""
        message = event.message
        message.incref()
        tracked = _Tracked(event)
        self._queues.setdefault((message.topic, message.partition), deque()).append(tracked)
        self._by_message[id(message)] = tracked

    async def done(self, event: EventT) -> None:
        message = event.message
        tracked = self._by_message.get(id(message))
        if tracked is None:  # its partition was revoked meanwhile
            return
        tracked.done = True
        queue = self._queues[(message.topic, message.partition)]
        while queue and queue[0].done:
            head = queue.popleft()
            del self._by_message[id(head.event.message)]
            await self._ack(head.event)

    def forget_partition(self, partition: int) -> None:
        """A revoked partition: whatever it still tracks is re-delivered to its next owner."""
        for key in [k for k in self._queues if k[1] == partition]:
            for tracked in self._queues.pop(key):
                self._by_message.pop(id(tracked.event.message), None)

    def give_back(self) -> list[EventT]:
        """Forget every event not acknowledged yet (a rebalance began): its offset stays uncommitted,
        so the partition's next owner reads it again."""
        events = [t.event for q in self._queues.values() for t in q]
        self._queues.clear()
        self._by_message.clear()
        return events

    def waiting(self) -> int:
        """Events done but not acknowledged yet, behind an earlier one of their partition."""
        return sum(t.done for q in self._queues.values() for t in q)

    def __len__(self) -> int:
        return len(self._by_message)
