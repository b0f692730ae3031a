"""Event-time merge of a partition's two input topics (Kafka Streams' timestamp synchronisation).

A user's clicks and orders come on two topics; a consumer sees them interleaved however the fetches
happen to land. Here each partition's clicks and orders wait in two queues and leave in event-time
order (ties: clicks first). A queue that is empty holds the other back until its topic-partition is
known to be caught up, or until `max_wait` passes. With a backlog (a replay, a restart) the order is
therefore exactly the merge of the two partitions by timestamp, which the offline engine reproduces.

Held messages keep an extra reference (Faust `incref`), so their offsets are not committed before
they are processed: a crash re-delivers them.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from faust.types import EventT

Entry = tuple[EventT, Any]  # the Faust event and what the caller attached to it


@dataclass(slots=True)
class _Queues:
    by_topic: dict[str, deque[tuple[float, Entry]]] = field(default_factory=dict)
    last_offset: dict[str, int] = field(default_factory=dict)


class PartitionSequencer:
    def __init__(self, topics: tuple[str, ...], max_wait: float = 0.5) -> None:
        self.topics = topics  # in tie-break order
        self.rank = {t: i for i, t in enumerate(topics)}
        self.max_wait = max_wait
        self.partitions: dict[int, _Queues] = {}
        self.forced = 0  # releases made by the time limit, not by order: each may reorder events

    def push(self, event: EventT, payload: Any = None) -> None:
        message = event.message
        queues = self.partitions.setdefault(message.partition, _Queues())
        queues.by_topic.setdefault(message.topic, deque()).append((time.monotonic(), (event, payload)))
        queues.last_offset[message.topic] = message.offset
        message.incref()  # released by the caller's ack after processing

    def release(self, caught_up: Callable[[str, int, int | None], bool]) -> list[Entry]:
        """Entries that may be processed now, in order. `caught_up(topic, partition, last_offset)`."""
        now = time.monotonic()
        out: list[Entry] = []
        for partition, queues in self.partitions.items():
            while True:
                heads = {t: q[0] for t, q in queues.by_topic.items() if q}
                if not heads:
                    break
                if len(heads) < len(self.topics):
                    waiting = [t for t in self.topics if t not in heads]
                    oldest = min(arrived for arrived, _ in heads.values())
                    ready = all(caught_up(t, partition, queues.last_offset.get(t)) for t in waiting)
                    if not ready and now - oldest < self.max_wait:
                        break
                    if not ready:
                        self.forced += 1
                topic = min(
                    heads, key=lambda t: (heads[t][1][0].message.timestamp or 0, self.rank.get(t, 99))
                )
                out.append(queues.by_topic[topic].popleft()[1])
        return out

    def drop_partition(self, partition: int) -> list[Entry]:
        """Forget a revoked partition's held events (another worker will get them re-delivered)."""
        queues = self.partitions.pop(partition, None)
        return [entry for q in (queues.by_topic.values() if queues else ()) for _, entry in q]

    def queued(self) -> dict[tuple[str, int], int]:
        """Held events per (topic, partition)."""
        return {
            (topic, partition): len(q)
            for partition, queues in self.partitions.items()
            for topic, q in queues.by_topic.items()
        }

    def holds(self, partition: int) -> bool:
        queues = self.partitions.get(partition)
        return queues is not None and any(queues.by_topic.values())

    def last_offset(self, topic: str, partition: int) -> int | None:
        queues = self.partitions.get(partition)
        return None if queues is None else queues.last_offset.get(topic)

    def __len__(self) -> int:
        return sum(len(q) for queues in self.partitions.values() for q in queues.by_topic.values())
