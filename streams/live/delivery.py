"""Delivery: the input topics' records from a librdkafka consumer group, merged per partition in
event-time order, and the input offsets that may be committed.

clicks[p] and orders[p] are co-partitioned: the range assignor gives both to the same member. A
record is committed only once it and every record before it in its topic-partition has been
processed (held records are not), so a crash or a rebalance re-delivers what was not processed;
the offset watermark in each state makes a re-delivered event a no-op.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from confluent_kafka import OFFSET_INVALID, Consumer, TopicPartition

from streams.live.records import InputRecord, readable
from streams.live.sequencer import Entry, PartitionSequencer
from streams.live.watermarks import HighWatermarks

log = logging.getLogger(__name__)

TP = tuple[str, int]
PAUSE_AT = 2000  # held records of one topic-partition before it is paused
RESUME_AT = 500
# The broker answers log-end requests: an answer this recent means it is reachable.
ANSWERING_WITHIN_MS = 3000
# Partition numbers assigned or revoked (a rebalance callback in the consumer's poll).
OnPartitions = Callable[[set[int]], None]


def consumer_config(
    client: Mapping[str, Any], group_id: str, client_id: str, session_timeout_ms: int = 10_000
) -> dict[str, Any]:
    """`client`: `streams.kafka.clients.librdkafka_config`."""
    return {
        **client,
        "group.id": group_id,
        "client.id": client_id,  # the owner lookup finds a member's HTTP address here
        # The same partition numbers of every input topic to one member (co-partitioning).
        "partition.assignment.strategy": "range",
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "earliest",
        # A SIGKILLed worker holds its partitions until the session times out: keep that short.
        "session.timeout.ms": session_timeout_ms,
        "heartbeat.interval.ms": 2000,
        "max.poll.interval.ms": 600_000,  # a partition's restore runs inside the poll
        "fetch.wait.max.ms": 50,
        "queued.max.messages.kbytes": 16384,
    }


class Delivery:
    def __init__(
        self,
        consumer: Consumer,
        topics: tuple[str, ...],
        watermarks: HighWatermarks,
        max_wait: float = 10.0,
    ) -> None:
        self.consumer = consumer
        self.topics = topics  # physical input topics, in tie-break order
        self.watermarks = watermarks
        self.sequencer = PartitionSequencer(topics, max_wait=max_wait)
        self.assigned: set[int] = set()  # partition numbers
        self._read: dict[TP, int] = {}  # last offset read per topic-partition
        self._start: dict[TP, int] = {}  # committed offset at assignment (next to read)
        self._paused: set[TP] = set()
        self._on_assigned: OnPartitions = lambda _: None
        self._on_revoked: OnPartitions = lambda _: None

    def subscribe(self, on_assigned: OnPartitions, on_revoked: OnPartitions) -> None:
        self._on_assigned, self._on_revoked = on_assigned, on_revoked
        self.consumer.subscribe(list(self.topics), on_assign=self._assign, on_revoke=self._revoke)

    # -- rebalance callbacks (inside poll, on the loop's thread) ----------------------------------------

    def _assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        numbers = {tp.partition for tp in partitions} - self.assigned
        for tp in consumer.committed(partitions, timeout=30):
            self._start[(tp.topic, tp.partition)] = tp.offset if tp.offset != OFFSET_INVALID else 0
        log.info("assigned partitions %s", sorted(numbers))
        self._on_assigned(numbers)  # restores before the first record of them is handed out
        self.assigned |= numbers

    def _revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        numbers = {tp.partition for tp in partitions}
        self._on_revoked(numbers)  # first: what was processed of them is committed while still known
        dropped = 0
        for p in numbers:
            dropped += len(self.sequencer.drop_partition(p))
        tps = [(tp.topic, tp.partition) for tp in partitions]
        for tp in tps:
            self._read.pop(tp, None)
            self._start.pop(tp, None)
            self._paused.discard(tp)
        self.watermarks.forget(tps)
        self.assigned -= numbers
        log.info("revoked partitions %s (%d held records to be fetched again)", sorted(numbers), dropped)

    # -- reading ------------------------------------------------------------------------------------------

    def poll(self, max_records: int, timeout: float) -> tuple[list[InputRecord], int]:
        """Records read now, and the wall-clock ms they were handed out at."""
        # librdkafka's consume waits for `max_records` or the timeout, whichever comes first: take
        # what is there, wait only for a first record, then take what came with it.
        messages = self.consumer.consume(max_records, 0)
        if not messages and self.sequencer and self.watermarks.wait(timeout):
            # Held records wait for a log end: its answer, not a new record, is what lets them go.
            messages = self.consumer.consume(max_records, 0)
        elif not messages:
            messages = self.consumer.consume(1, timeout)
            if messages and max_records > 1:
                messages += self.consumer.consume(max_records - 1, 0)
        handed_at = int(time.time() * 1000)
        records = []
        for message in readable(messages, "consumer"):
            record = InputRecord.from_message(message)
            self._read[(record.topic, record.partition)] = record.offset
            records.append(record)
        self.watermarks.collect()
        return records, handed_at

    def hold(self, record: InputRecord, payload: Any, handed_at: int) -> None:
        self.sequencer.push(record, payload, handed_at)

    def skip(self, record: InputRecord) -> None:
        """A record not held (refused at admission) was still read."""
        self.sequencer.skip(record.topic, record.partition, record.offset)

    def release(self, limit: int | None = None) -> list[Entry]:
        ready = self.sequencer.release(self.caught_up, self.stalled, limit)
        self.watermarks.request_wanted()
        self._flow_control()
        return ready

    def last_seen(self, tp: TP) -> int:
        read = self._read.get(tp)
        return read if read is not None else self._start.get(tp, 0) - 1

    def caught_up(self, topic: str, partition: int, last_offset: int | None, since_ms: int) -> bool:
        tp = (topic, partition)
        if partition not in self.assigned:
            return True  # mid-rebalance: nothing to wait for here
        if last_offset is None:
            last_offset = self.last_seen(tp)
        return self.watermarks.caught_up(tp, last_offset, since_ms)

    def stalled(self, topic: str, partition: int) -> bool:
        """Nothing of this topic-partition is on its way although the broker answers. Records the
        broker has past the last one read are on their way (maybe queued in the consumer behind
        other partitions' records), and a silent broker (restarting, unreachable) is a delay: in
        neither case may the merge trade order for time."""
        tp = (topic, partition)
        if not self.watermarks.answered_within(ANSWERING_WITHIN_MS):
            return False
        end = self.watermarks.log_end(tp)
        return end is not None and end.offset <= self.last_seen(tp) + 1

    def idle(self, partition: int) -> bool:
        """Nothing held and nothing more to read for this partition on any input topic."""
        if self.sequencer.holds(partition):
            return False
        idle = all(self.caught_up(t, partition, None, 0) for t in self.topics)
        self.watermarks.request_wanted()
        return idle

    def commit_offsets(self) -> dict[TP, int]:
        """Per assigned input topic-partition, the next offset to read after everything processed:
        the first held record's offset while the sequencer holds some."""
        held = self.sequencer.first_held()
        offsets = {}
        for tp, last in self._read.items():
            offsets[tp] = held.get(tp, last + 1)
        return offsets

    def request_log_ends(self) -> None:
        self.watermarks.request(self.input_partitions())

    def input_partitions(self) -> list[TP]:
        return [(t, p) for p in sorted(self.assigned) for t in self.topics]

    def lag(self, committed: Mapping[TP, int]) -> dict[TP, int]:
        """Log end minus the next offset to process, per assigned input partition with a known end."""
        lag = {}
        for tp in self.input_partitions():
            end = self.watermarks.log_end(tp)
            if end is None:
                continue
            done = committed.get(tp, self._start.get(tp, 0))
            lag[tp] = max(0, end.offset - done)
        return lag

    def _flow_control(self) -> None:
        """Pause a topic-partition that has plenty waiting, so the consumer brings the one it
        waits for (Kafka Streams pauses full partition buffers for the same reason)."""
        queued = self.sequencer.queued()
        pausing = [tp for tp, n in queued.items() if n >= PAUSE_AT and tp not in self._paused]
        resuming = [tp for tp in self._paused if queued.get(tp, 0) < RESUME_AT]
        if pausing:
            self.consumer.pause([TopicPartition(t, p) for t, p in pausing])
            self._paused.update(pausing)
        if resuming:
            self.consumer.resume([TopicPartition(t, p) for t, p in resuming])
            self._paused.difference_update(resuming)

    def drop(self, partitions: Iterable[int]) -> None:
        for p in partitions:
            self.sequencer.drop_partition(p)
