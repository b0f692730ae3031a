"""Delivery with a fake consumer and the fake admin of test_watermarks: what is committed never
skips a held record, a rebalance forgets what it takes away, the merge only trades order for time
when the broker says nothing more is coming, and a full topic-partition is paused until it drains."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from confluent_kafka import (
    OFFSET_INVALID,
    TIMESTAMP_CREATE_TIME,
    KafkaError,
    KafkaException,
    TopicPartition,
)

from streams.live.delivery import ANSWERING_WITHIN_MS, PAUSE_AT, RESUME_AT, Delivery
from streams.live.records import InputRecord
from streams.live.watermarks import HighWatermarks
from tests.live.conftest import Clock
from tests.live.test_watermarks import Clock as WallClock
from tests.live.test_watermarks import FakeAdmin

TP = tuple[str, int]
TOPICS = ("clicks", "orders")
HANDED_AT = 900  # wall-clock ms of the fetch, before the fake admin's clock (1,000): log ends are recent


@dataclass
class FakeMessage:
    _topic: str
    _partition: int
    _offset: int
    _ts_ms: int = 0
    _error: KafkaError | None = None

    def error(self) -> KafkaError | None:
        return self._error

    def topic(self) -> str:
        return self._topic

    def partition(self) -> int:
        return self._partition

    def offset(self) -> int:
        return self._offset

    def timestamp(self) -> tuple[int, int]:
        return (TIMESTAMP_CREATE_TIME, self._ts_ms)

    def key(self) -> bytes | None:
        return b"u1"

    def value(self) -> bytes | None:
        return b"{}"

    def headers(self) -> list[tuple[str, bytes]] | None:
        return None


Rebalance = Callable[[Any, list[TopicPartition]], None]


@dataclass
class FakeConsumer:
    """The part of confluent_kafka.Consumer that Delivery uses; rebalances are driven by the test."""

    committed_offsets: dict[TP, int] = field(default_factory=dict)
    topics: list[str] = field(default_factory=list)
    on_assign: Rebalance | None = None
    on_revoke: Rebalance | None = None
    batches: list[list[FakeMessage]] = field(default_factory=list)
    committed_asked: list[list[TP]] = field(default_factory=list)
    paused: list[list[TP]] = field(default_factory=list)
    resumed: list[list[TP]] = field(default_factory=list)

    def subscribe(self, topics: list[str], on_assign: Rebalance, on_revoke: Rebalance) -> None:
        self.topics, self.on_assign, self.on_revoke = topics, on_assign, on_revoke

    def consume(self, num_messages: int, timeout: float) -> list[FakeMessage]:
        return self.batches.pop(0) if self.batches else []

    def committed(self, partitions: list[TopicPartition], timeout: float) -> list[TopicPartition]:
        self.committed_asked.append([(tp.topic, tp.partition) for tp in partitions])
        return [
            TopicPartition(
                tp.topic, tp.partition, self.committed_offsets.get((tp.topic, tp.partition), OFFSET_INVALID)
            )
            for tp in partitions
        ]

    def pause(self, partitions: list[TopicPartition]) -> None:
        self.paused.append(sorted((tp.topic, tp.partition) for tp in partitions))

    def resume(self, partitions: list[TopicPartition]) -> None:
        self.resumed.append(sorted((tp.topic, tp.partition) for tp in partitions))

    def assign(self, *tps: TP) -> None:
        assert self.on_assign is not None
        self.on_assign(self, [TopicPartition(t, p) for t, p in tps])

    def revoke(self, *tps: TP) -> None:
        assert self.on_revoke is not None
        self.on_revoke(self, [TopicPartition(t, p) for t, p in tps])


@dataclass
class Setup:
    delivery: Delivery
    consumer: FakeConsumer
    admin: FakeAdmin
    wall: WallClock
    assigned: list[set[int]] = field(default_factory=list)
    revoked: list[set[int]] = field(default_factory=list)

    def read(self, *messages: FakeMessage) -> list[InputRecord]:
        self.consumer.batches.append(list(messages))
        records, _ = self.delivery.poll(500, 0.0)
        return records

    def hold(self, *records: InputRecord) -> None:
        for record in records:
            self.delivery.hold(record, None, HANDED_AT)

    def answer_log_ends(self, ends: dict[TP, int]) -> None:
        self.delivery.watermarks.request(ends)
        for tp, offset in ends.items():
            self.admin.answer(tp, offset)
        self.delivery.watermarks.collect()

    def released(self) -> list[TP]:
        return [(e.message.topic, e.message.offset) for e, _ in self.delivery.release()]


def make(committed: dict[TP, int] | None = None) -> Setup:
    consumer, admin, wall = FakeConsumer(committed or {}), FakeAdmin(), WallClock()
    delivery = Delivery(consumer, TOPICS, HighWatermarks(admin, wall))  # type: ignore[arg-type]
    setup = Setup(delivery, consumer, admin, wall)
    delivery.subscribe(setup.assigned.append, setup.revoked.append)
    return setup


def clicks(partition: int, offsets: range) -> list[FakeMessage]:
    """Clicks a second apart in event time: offset o at (o + 1) s."""
    return [FakeMessage("clicks", partition, o, 1_000 * (o + 1)) for o in offsets]


def test_subscribe_gives_every_input_topic_and_the_rebalance_callbacks() -> None:
    setup = make()
    assert setup.consumer.topics == list(TOPICS)
    assert setup.consumer.on_assign is not None and setup.consumer.on_revoke is not None


def test_the_commit_stops_at_the_first_held_record_of_a_topic_partition(clock: Clock) -> None:
    """Records after a held one may be done (refused at admission), but committing past the held
    click would lose it on a crash: nothing re-delivers an offset below the committed one."""
    setup = make({("clicks", 0): 3, ("orders", 0): 0})
    setup.consumer.assign(("clicks", 0), ("orders", 0))
    c3, c4, c5, c6, c7 = setup.read(*clicks(0, range(3, 8)))
    o0, o1 = setup.read(FakeMessage("orders", 0, 0, 500), FakeMessage("orders", 0, 1, 600))
    for refused in (c3, c4, c6, c7):
        setup.delivery.skip(refused)
    setup.hold(o0, o1, c5)
    # the orders go first (earlier event times); click 5 waits: orders' log end is not known yet
    assert setup.released() == [("orders", 0), ("orders", 1)]
    assert setup.delivery.commit_offsets() == {("clicks", 0): 5, ("orders", 0): 2}

    setup.answer_log_ends({("orders", 0): 2})  # nothing more on orders: click 5 may go
    assert setup.released() == [("clicks", 5)]
    assert setup.delivery.commit_offsets() == {("clicks", 0): 8, ("orders", 0): 2}


def test_error_messages_are_not_records_and_not_read() -> None:
    setup = make()
    setup.consumer.assign(("clicks", 0), ("orders", 0))
    eof = FakeMessage("clicks", 0, 9, _error=KafkaError(KafkaError._PARTITION_EOF))
    transport = FakeMessage("clicks", 0, 10, _error=KafkaError(KafkaError._TRANSPORT))
    (record,) = setup.read(eof, FakeMessage("clicks", 0, 4, 1_000), transport)
    assert record.offset == 4
    assert setup.delivery.commit_offsets() == {("clicks", 0): 5}


def test_assignment_reports_new_partition_numbers_and_reads_from_the_committed_offsets() -> None:
    setup = make({("clicks", 0): 4, ("clicks", 1): 7, ("orders", 1): 2})  # orders[0]: none committed
    tps = [("clicks", 0), ("orders", 0), ("clicks", 1), ("orders", 1)]
    setup.consumer.assign(*tps)
    assert setup.consumer.committed_asked == [tps]
    assert setup.assigned == [{0, 1}]
    assert setup.delivery.assigned == {0, 1}
    delivery = setup.delivery
    assert delivery.last_seen(("clicks", 0)) == 3
    assert delivery.last_seen(("orders", 0)) == -1  # OFFSET_INVALID: from the beginning
    assert delivery.last_seen(("clicks", 1)) == 6
    assert delivery.input_partitions() == tps

    # lag before anything is committed here counts from the committed starts
    setup.answer_log_ends({("clicks", 0): 10, ("orders", 0): 5, ("clicks", 1): 7, ("orders", 1): 9})
    assert delivery.lag({}) == {("clicks", 0): 6, ("orders", 0): 5, ("clicks", 1): 0, ("orders", 1): 7}
    assert delivery.lag({("clicks", 0): 8})[("clicks", 0)] == 2

    setup.consumer.assign(("clicks", 2), ("orders", 2), ("clicks", 1), ("orders", 1))
    assert setup.assigned[-1] == {2}  # partition 1 is not restored a second time
    assert delivery.assigned == {0, 1, 2}


def test_revoke_drops_held_records_and_forgets_the_partitions(clock: Clock) -> None:
    setup = make()
    setup.consumer.assign(("clicks", 0), ("orders", 0), ("clicks", 1), ("orders", 1))
    setup.hold(*setup.read(*clicks(0, range(3)), *clicks(1, range(2))))
    setup.answer_log_ends({("clicks", 0): 3})
    setup.delivery.release()  # orders not caught up: everything stays held
    assert setup.delivery.commit_offsets() == {("clicks", 0): 0, ("clicks", 1): 0}

    setup.consumer.revoke(("clicks", 0), ("orders", 0))
    delivery = setup.delivery
    assert setup.revoked == [{0}]
    assert delivery.assigned == {1}
    assert not delivery.sequencer.holds(0) and delivery.sequencer.holds(1)
    assert delivery.sequencer.queued() == {("clicks", 1): 2}
    assert delivery.commit_offsets() == {("clicks", 1): 0}  # nothing of partition 0 committed
    assert delivery.watermarks.log_end(("clicks", 0)) is None
    assert delivery.last_seen(("clicks", 0)) == -1
    assert delivery.input_partitions() == [("clicks", 1), ("orders", 1)]


def test_stalled_only_when_the_broker_answers_and_has_nothing_more() -> None:
    setup = make()
    delivery = setup.delivery
    setup.consumer.assign(("clicks", 0), ("orders", 0))
    setup.read(*[FakeMessage("orders", 0, o, 1_000) for o in range(5)])  # last read: 4
    assert not delivery.stalled("orders", 0)  # the broker never answered: a delay, not a stall

    setup.answer_log_ends({("orders", 0): 5})  # asked at 1,000
    assert delivery.stalled("orders", 0)

    setup.wall.now = 1_000 + ANSWERING_WITHIN_MS  # that answer is now too old to say it answers
    assert not delivery.stalled("orders", 0)
    delivery.watermarks.request([("orders", 0)])
    setup.admin.futures[("orders", 0)].set_exception(KafkaException(KafkaError(KafkaError._TRANSPORT)))
    delivery.watermarks.collect()
    assert not delivery.stalled("orders", 0)  # a failed request is not an answer

    setup.answer_log_ends({("orders", 0): 7})  # answers again: offsets 5 and 6 are on their way
    assert not delivery.stalled("orders", 0)
    setup.read(FakeMessage("orders", 0, 5, 1_000), FakeMessage("orders", 0, 6, 1_000))
    assert delivery.stalled("orders", 0)


def test_stalled_counts_from_the_committed_start_before_anything_is_read() -> None:
    setup = make({("orders", 0): 5})
    setup.consumer.assign(("clicks", 0), ("orders", 0))
    setup.answer_log_ends({("orders", 0): 6})
    assert not setup.delivery.stalled("orders", 0)  # offset 5 is still to come
    setup.answer_log_ends({("orders", 0): 5})
    assert setup.delivery.stalled("orders", 0)


def test_a_full_topic_partition_is_paused_until_it_drains_below_resume_at(clock: Clock) -> None:
    """Clicks pile up while orders[0] is awaited: pausing clicks[0] lets the consumer bring orders."""
    setup = make()
    setup.consumer.assign(("clicks", 0), ("orders", 0))
    held = setup.read(*clicks(0, range(PAUSE_AT - 1)))
    setup.hold(*held)
    assert setup.released() == []
    assert setup.consumer.paused == []  # PAUSE_AT - 1 held: still fetched

    setup.hold(*setup.read(*clicks(0, range(PAUSE_AT - 1, PAUSE_AT))))
    assert setup.released() == []
    assert setup.consumer.paused == [[("clicks", 0)]]
    setup.delivery.release()
    assert setup.consumer.paused == [[("clicks", 0)]]  # paused once, not on every release

    # an order lets the clicks before it go, down to exactly RESUME_AT held: still paused
    drained = PAUSE_AT - RESUME_AT
    (order,) = setup.read(FakeMessage("orders", 0, 0, 1_000 * drained + 500))
    setup.hold(order)
    released = setup.released()
    assert len(released) == drained + 1 and released[-1] == ("orders", 0)
    assert setup.delivery.sequencer.queued()[("clicks", 0)] == RESUME_AT
    assert setup.consumer.resumed == []

    (order,) = setup.read(FakeMessage("orders", 0, 1, 1_000 * (drained + 1) + 500))
    setup.hold(order)
    assert setup.released() == [("clicks", drained), ("orders", 1)]
    assert setup.consumer.resumed == [[("clicks", 0)]]
    setup.delivery.release()
    assert setup.consumer.resumed == [[("clicks", 0)]]


@pytest.mark.parametrize("partition", [0, 1])
def test_caught_up_waits_for_nothing_mid_rebalance(partition: int) -> None:
    """A partition not (or no longer) assigned has nothing on its way here."""
    setup = make()
    setup.consumer.assign(("clicks", 1), ("orders", 1))
    caught_up = setup.delivery.caught_up("orders", partition, None, 0)
    assert caught_up is (partition == 0)
    setup.delivery.watermarks.request_wanted()
    assert setup.admin.requests == ([] if partition == 0 else [[("orders", 1)]])
