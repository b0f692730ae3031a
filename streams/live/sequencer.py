"""Event-time merge of a partition's two input topics (Kafka Streams' timestamp synchronisation).

A user's clicks and orders come on two topics; a consumer sees them interleaved however the fetches
happen to land. Here each partition's clicks and orders wait in two queues and leave in event-time
order (ties: clicks first). A queue that is empty holds the other back until its topic-partition is
known to be caught up, or until `max_wait` passes. "Known" means judged on a fetch response at least
as recent as the one that brought the waiting event: a highwater seen before that event was fetched
can miss what was written just ahead of it. With a backlog (a replay, a restart), and with a
producer that writes a partition's topics in event-time order (`streams replay` does), the order is
therefore exactly the merge of the two partitions by timestamp, which the offline engine reproduces.

Held records are not committed (streams/live/delivery.py) before they are processed: a crash
re-delivers them. A rebalance gives them back the same way: they are dropped uncommitted, and the
partition's next owner (maybe this worker) fetches them again from the committed offset, so order
never depends on a rebalance.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol


class RecordPosition(Protocol):
    """Where a record was read and its timestamp (streams.live.records.InputRecord)."""

    @property
    def topic(self) -> str: ...
    @property
    def partition(self) -> int: ...
    @property
    def offset(self) -> int: ...
    @property
    def timestamp(self) -> float | None: ...


class Envelope(Protocol):
    @property
    def message(self) -> RecordPosition: ...


Entry = tuple[Envelope, Any]  # the record's envelope and what the caller attached to it
# caught_up(topic, partition, last offset pushed or None, fetched at or after this wall-clock ms)
CaughtUp = Callable[[str, int, int | None, int], bool]
# stalled(topic, partition): nothing of it is on its way here although the broker answers for it
Stalled = Callable[[str, int], bool]


@dataclass(slots=True)
class _Held:
    arrived: float  # monotonic
    fetched_at: int  # wall-clock ms of the fetch response that brought it (0: unknown)
    entry: Entry


@dataclass(slots=True)
class _Queues:
    by_topic: dict[str, deque[_Held]] = field(default_factory=dict)
    last_offset: dict[str, int] = field(default_factory=dict)
    last_arrival: dict[str, float] = field(default_factory=dict)  # monotonic, per topic
    last_moving: dict[str, float] = field(default_factory=dict)  # monotonic, per awaited topic


class PartitionSequencer:
    def __init__(self, topics: tuple[str, ...], max_wait: float = 0.5) -> None:
        self.topics = topics  # in tie-break order
        self.rank = {t: i for i, t in enumerate(topics)}
        self.max_wait = max_wait
        self.partitions: dict[int, _Queues] = {}
        self.forced = 0  # releases made by the time limit, not by order: each may reorder events
        self._turn = 0  # which partition is first in a limited release

    def push(self, event: Envelope, payload: Any = None, fetched_at: int | None = None) -> None:
        message = event.message
        queues = self.partitions.setdefault(message.partition, _Queues())
        held = _Held(time.monotonic(), fetched_at or 0, (event, payload))
        queues.last_arrival[message.topic] = held.arrived
        queues.by_topic.setdefault(message.topic, deque()).append(held)
        queues.last_offset[message.topic] = message.offset

    def skip(self, topic: str, partition: int, offset: int) -> None:
        """A message that is not held (refused at admission) was still read: a topic-partition
        that ends with one is caught up, not waiting for it."""
        queues = self.partitions.setdefault(partition, _Queues())
        queues.last_offset[topic] = max(offset, queues.last_offset.get(topic, -1))

    def release(
        self, caught_up: CaughtUp, stalled: Stalled | None = None, limit: int | None = None
    ) -> list[Entry]:
        """Entries that may be processed now, in order. `stalled` (default: always) tells whether an
        awaited topic-partition has really stopped, rather than being slow to reach us.

        `limit`: at most this many, the rest staying held in order for a later call. A backlog held
        while a topic catches up (thousands of events at a worker's start) then leaves in batches of
        a round's size, not as one batch whose outputs all wait for its last event. The partitions
        take turns at being first, so a busy one cannot keep the others waiting."""
        now = time.monotonic()
        out: list[Entry] = []
        order = list(self.partitions.items())
        if limit is not None and order:
            first = self._turn % len(order)
            order = order[first:] + order[:first]
            self._turn += 1
        for partition, queues in order:
            while limit is None or len(out) < limit:
                heads = {t: q[0] for t, q in queues.by_topic.items() if q}
                if not heads:
                    break
                if len(heads) < len(self.topics):
                    waiting = [t for t in self.topics if t not in heads]
                    since = max(held.fetched_at for held in heads.values())
                    ready = all(caught_up(t, partition, queues.last_offset.get(t), since) for t in waiting)
                    # The valve opens only when the awaited topic has stalled: a partition that
                    # is merely behind (a backlog) keeps delivering, and each arrival resets it.
                    # So do records already fetched but still on their way through this busy
                    # process, and a broker that does not answer (restarting, unreachable):
                    # nothing can be gained by releasing early then, only order lost.
                    for t in waiting:
                        if stalled is not None and not stalled(t, partition):
                            queues.last_moving[t] = now
                    waited = max(
                        min(held.arrived for held in heads.values()),
                        *(queues.last_arrival.get(t, 0.0) for t in waiting),
                        *(queues.last_moving.get(t, 0.0) for t in waiting),
                    )
                    if not ready and now - waited < self.max_wait:
                        break
                    if not ready:
                        self.forced += 1
                topic = min(
                    heads, key=lambda t: (heads[t].entry[0].message.timestamp or 0, self.rank.get(t, 99))
                )
                out.append(queues.by_topic[topic].popleft().entry)
        return out

    def drop_partition(self, partition: int) -> list[Entry]:
        """Forget a revoked partition's held events (another worker will get them re-delivered)."""
        queues = self.partitions.pop(partition, None)
        return [held.entry for q in (queues.by_topic.values() if queues else ()) for held in q]

    def drop_all(self) -> list[Entry]:
        """Forget every held event (a rebalance began): they were never acked, so their offsets are
        not committed and whoever owns each partition next reads them again, in order."""
        return [entry for partition in list(self.partitions) for entry in self.drop_partition(partition)]

    def waiting_since(self) -> dict[int, float]:
        """Per partition holding events: when (monotonic) its oldest held event arrived."""
        return {
            partition: min(q[0].arrived for q in queues.by_topic.values() if q)
            for partition, queues in self.partitions.items()
            if any(queues.by_topic.values())
        }

    def queued(self) -> dict[tuple[str, int], int]:
        """Held events per (topic, partition)."""
        return {
            (topic, partition): len(q)
            for partition, queues in self.partitions.items()
            for topic, q in queues.by_topic.items()
        }

    def first_held(self) -> dict[tuple[str, int], int]:
        """Per (topic, partition) holding records: the offset of the first one held."""
        return {
            (topic, partition): q[0].entry[0].message.offset
            for partition, queues in self.partitions.items()
            for topic, q in queues.by_topic.items()
            if q
        }

    def holds(self, partition: int) -> bool:
        queues = self.partitions.get(partition)
        return queues is not None and any(queues.by_topic.values())

    def last_offset(self, topic: str, partition: int) -> int | None:
        queues = self.partitions.get(partition)
        return None if queues is None else queues.last_offset.get(topic)

    def __len__(self) -> int:
        return sum(len(q) for queues in self.partitions.values() for q in queues.by_topic.values())
