"""The embedded adapter: the whole pipeline over an event log in one process, no broker.

It reproduces what a worker does with the same log: users are put on partitions the way Kafka's
default partitioner does, each partition's clicks and orders are merged in event-time order (as the
live sequencer does), offsets are numbered as a fresh topic would number them, and the same
`Processor` runs on micro-batches (its results do not depend on batch size).
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable
from dataclasses import dataclass, field

from streams.codec import MAX_VALUE_BYTES, REPLAY_HEADER
from streams.collector import collections_paused_for_a_run, paused_collections
from streams.config import INPUT_TOPICS
from streams.core.events import SOURCE_RANK, Position
from streams.core.processor import Incoming, Output, PartitionState, Processor
from streams.core.state import UserState
from streams.core.timers import TimerIndex
from streams.deadletters import dead_letter_value
from streams.errors import BadMessage
from streams.ingest import parse_catalog_item, parse_user_event
from streams.logs import LogRecord
from streams.partitioning import partition_for


@dataclass
class OfflineResult:
    outputs: list[Output] = field(default_factory=list)
    dead_letters: list[dict] = field(default_factory=list)
    states: dict[str, UserState] = field(default_factory=dict)
    partitions: dict[int, PartitionState] = field(default_factory=dict)
    events: int = 0
    applied: int = 0


@dataclass
class _Pending:
    incoming: Incoming
    ts: int


class OfflineEngine:
    def __init__(
        self,
        processor: Processor,
        partitions: int = 8,
        batch_size: int = 256,
        replay: bool = True,
        max_message_bytes: int = MAX_VALUE_BYTES,
    ) -> None:
        if not isinstance(processor.catalog, dict):
            raise TypeError(
                "the offline engine keeps the catalog itself: build the Processor with catalog={}"
            )
        self.processor = processor
        self.partitions = partitions
        self.batch_size = batch_size
        self.replay = replay
        self.max_message_bytes = max_message_bytes  # the worker's STREAMS_MAX_MESSAGE_BYTES
        self.result = OfflineResult()
        self.timers = TimerIndex()
        self._offsets: dict[tuple[str, int], int] = {}
        self._pending: dict[int, dict[str, list[_Pending]]] = {}
        self._partition_of: dict[str | None, int] = {}

    def run(self, records: Iterable[LogRecord]) -> OfflineResult:
        with collections_paused_for_a_run():  # the events parsed are kept until their batch: not walked
            for record in records:
                self.feed(record)
            self.flush()
        return self.result

    def feed(self, record: LogRecord) -> None:
        if record.topic == "catalog":
            self.flush()  # a catalog change applies to what comes after it in the log
            self._catalog(record)
            return
        if record.topic not in INPUT_TOPICS:
            return
        partition = self._partition_of.get(record.key)
        if partition is None:  # murmur2 in Python: once per key, not once per event
            partition = self._partition_of[record.key] = partition_for(record.key, self.partitions)
        slot = (record.topic, partition)
        offset = self._offsets[slot] = self._offsets.get(slot, -1) + 1
        self.result.events += 1
        key = None if record.key is None else record.key.encode()
        value = record.wire_value()
        try:
            event = parse_user_event(
                record.topic, key, value, record.wire_headers(), self.max_message_bytes, record.ts
            )
        except BadMessage as exc:
            self.result.dead_letters.append(
                dead_letter_value(
                    record.topic, partition, offset, key, value, exc, record.ts, self.max_message_bytes
                )
            )
            return
        replay = self.replay or REPLAY_HEADER in record.headers
        incoming = Incoming(event, partition, Position(record.topic, partition, offset), replay)
        self._pending.setdefault(partition, {}).setdefault(record.topic, []).append(
            _Pending(incoming, record.ts)
        )

    def flush(self) -> None:
        """Process everything pending, each partition's topics merged by (timestamp, topic rank) and
        cut in batches of `batch_size`.

        The n-th batches of all partitions run as one core call: the model then steps every
        partition's shoppers in one call per wave, not one per partition. The core's results do not
        depend on how events share a batch, and no partition sees another's users, so only the order
        of what is collected changes; it is put back: outputs and new users' states partition by
        partition, as if each partition had run alone."""
        ordered = {partition: self._merged(self._pending[partition]) for partition in sorted(self._pending)}
        self._pending.clear()
        outputs: dict[int, list[Output]] = {partition: [] for partition in ordered}
        new_users: dict[int, list[str]] = {partition: [] for partition in ordered}
        longest = max(map(len, ordered.values()), default=0)
        for start in range(0, longest, self.batch_size):
            end = start + self.batch_size
            self._process(
                [incoming for events in ordered.values() for incoming in events[start:end]],
                outputs,
                new_users,
            )
        states = self.result.states
        for partition in ordered:
            self.result.outputs += outputs[partition]
            for user in new_users[partition]:
                states[user] = states.pop(user)  # dict order: first seen, partition by partition

    @staticmethod
    def _merged(queues: dict[str, list[_Pending]]) -> list[Incoming]:
        merged = heapq.merge(
            *(
                [((p.ts, SOURCE_RANK[topic], n), p.incoming) for n, p in enumerate(items)]
                for topic, items in sorted(queues.items())
            )
        )
        return [incoming for _, incoming in merged]

    def _process(
        self, batch: list[Incoming], outputs: dict[int, list[Output]], new_users: dict[int, list[str]]
    ) -> None:
        states = self.result.states
        with paused_collections():
            result = self.processor.process_batch(batch, states.get, self.result.partitions, self.timers)
        for incoming, r in zip(batch, result.results, strict=True):
            self.result.applied += r.applied
            outputs[incoming.partition] += r.outputs
        partition_of = {incoming.event.user_id: incoming.partition for incoming in batch}
        for user, state in result.states.items():
            if user not in states:
                new_users[partition_of[user]].append(user)
            states[user] = state

    def _catalog(self, record: LogRecord) -> None:
        try:
            item = parse_catalog_item(record.wire_value(), record.wire_headers(), self.max_message_bytes)
        except BadMessage:
            return  # ignored, as the worker's catalog follower ignores it
        self.processor.catalog[item.item_id] = item  # type: ignore[index]
        watchers = [u for u, state in self.result.states.items() if item.item_id in state.watch]
        outputs, states = self.processor.on_catalog(item, watchers, self.result.states.get)
        self.result.outputs += outputs
        self.result.states.update(states)
