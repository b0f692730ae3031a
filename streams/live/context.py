"""Table access for one partition outside Faust's own per-event context.

Faust's RocksDB store and changelog pick the partition from the *current event*. A micro-batch
mixes partitions, and timers fire for users with no event at hand, so the adapter names the
partition explicitly through a stand-in event that carries just what Faust reads.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator
from contextlib import contextmanager

from faust.streams import _current_event


class _Message:
    __slots__ = ("__weakref__", "partition", "topic")

    def __init__(self, topic: str, partition: int) -> None:
        self.topic = topic
        self.partition = partition


class _PartitionEvent:
    __slots__ = ("__weakref__", "message")

    def __init__(self, topic: str, partition: int) -> None:
        self.message = _Message(topic, partition)


class PartitionContexts:
    def __init__(self, source_topic: str) -> None:
        self.source_topic = source_topic
        self._events: dict[int, _PartitionEvent] = {}

    @contextmanager
    def partition(self, partition: int) -> Iterator[None]:
        event = self._events.get(partition)
        if event is None:
            event = self._events[partition] = _PartitionEvent(self.source_topic, partition)
        token = _current_event.set(weakref.ref(event))  # type: ignore[arg-type]
        try:
            yield
        finally:
            _current_event.reset(token)
