"""The live event-time merge of clicks and orders, driven with stand-in Faust events (no broker)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from streams.live.sequencer import PartitionSequencer
from tests.live.conftest import Clock


@dataclass
class FakeMessage:
    topic: str
    partition: int
    offset: int
    timestamp: int


@dataclass
class FakeEvent:
    message: FakeMessage


@dataclass
class Broker:
    """What the worker's `_caught_up` would read: highwater and last fetch time per topic-partition."""

    highwater: dict[tuple[str, int], int] = field(default_factory=dict)
    polled_at: dict[tuple[str, int], int] = field(default_factory=dict)
    asked: list[tuple[str, int, int | None, int]] = field(default_factory=list)

    def caught_up(self, topic: str, partition: int, last: int | None, since: int) -> bool:
        self.asked.append((topic, partition, last, since))
        fresh = self.polled_at.get((topic, partition), 0) >= since
        return fresh and (-1 if last is None else last) + 1 >= self.highwater.get((topic, partition), 0)


def event(topic: str, offset: int, ts: int, partition: int = 0) -> FakeEvent:
    return FakeEvent(FakeMessage(topic, partition, offset, ts))


def offsets(entries: list[Any]) -> list[tuple[str, int]]:
    return [(e.message.topic, e.message.offset) for e, _ in entries]


def test_releases_both_topics_merged_by_timestamp_clicks_first_on_ties(clock: Clock) -> None:
    seq = PartitionSequencer(("clicks", "orders"), max_wait=10)
    broker = Broker({("clicks", 0): 3, ("orders", 0): 2}, {("clicks", 0): 5, ("orders", 0): 5})
    for e in (event("clicks", 0, 10), event("clicks", 1, 20), event("clicks", 2, 30)):
        seq.push(e, None, fetched_at=5)
    for e in (event("orders", 0, 20), event("orders", 1, 25)):
        seq.push(e, None, fetched_at=5)
    out = seq.release(broker.caught_up)
    assert offsets(out) == [("clicks", 0), ("clicks", 1), ("orders", 0), ("orders", 1), ("clicks", 2)]
    assert seq.forced == 0 and len(seq) == 0


def test_an_order_waits_for_clicks_that_are_still_on_the_broker(clock: Clock) -> None:
    seq = PartitionSequencer(("clicks", "orders"), max_wait=10)
    broker = Broker({("clicks", 0): 2, ("orders", 0): 1}, {("clicks", 0): 5, ("orders", 0): 5})
    seq.push(event("clicks", 0, 10), None, fetched_at=5)
    seq.push(event("orders", 0, 40), None, fetched_at=5)
    assert offsets(seq.release(broker.caught_up)) == [("clicks", 0)]  # clicks/1 is not here yet
    seq.push(event("clicks", 1, 30), None, fetched_at=6)
    broker.polled_at[("clicks", 0)] = 6
    assert offsets(seq.release(broker.caught_up)) == [("clicks", 1), ("orders", 0)]


def test_a_highwater_older_than_the_waiting_event_is_not_trusted(clock: Clock) -> None:
    # The order came in a fetch response at t=9; the clicks partition was last fetched at t=5 and
    # looked caught up then. A click written just before the order may be missing from that view.
    seq = PartitionSequencer(("clicks", "orders"), max_wait=10)
    broker = Broker({("clicks", 0): 0, ("orders", 0): 1}, {("clicks", 0): 5, ("orders", 0): 9})
    seq.push(event("orders", 0, 40), None, fetched_at=9)
    assert seq.release(broker.caught_up) == []
    assert broker.asked[-1] == ("clicks", 0, None, 9)
    broker.polled_at[("clicks", 0)] = 9  # a fresh response: still nothing on clicks
    assert offsets(seq.release(broker.caught_up)) == [("orders", 0)]
    assert seq.forced == 0


def test_the_valve_opens_only_when_the_awaited_topic_stalls(clock: Clock) -> None:
    seq = PartitionSequencer(("clicks", "orders"), max_wait=10)
    broker = Broker({("clicks", 0): 100, ("orders", 0): 1}, {("clicks", 0): 5, ("orders", 0): 5})
    seq.push(event("orders", 0, 1_000), None, fetched_at=5)
    for offset in range(5):  # a backlog: clicks keep arriving, each older than the order
        clock.now += 4
        seq.push(event("clicks", offset, offset), None, fetched_at=5)
        assert offsets(seq.release(broker.caught_up)) == [("clicks", offset)]
    assert seq.forced == 0  # 20 s have passed, but the clicks partition never stalled
    clock.now += 9
    assert seq.release(broker.caught_up) == []
    clock.now += 2  # 11 s without a click: give up waiting, count it
    assert offsets(seq.release(broker.caught_up)) == [("orders", 0)]
    assert seq.forced == 1


def test_the_valve_stays_shut_while_the_awaited_topic_is_only_delayed(clock: Clock) -> None:
    # Delayed: the broker is down, or fetched clicks are still on their way through a busy worker.
    seq = PartitionSequencer(("clicks", "orders"), max_wait=10)
    broker = Broker({("clicks", 0): 100, ("orders", 0): 1}, {("clicks", 0): 5, ("orders", 0): 5})
    delayed = {"clicks": True}

    def stalled(topic: str, partition: int) -> bool:
        return not delayed[topic]

    seq.push(event("orders", 0, 1_000), None, fetched_at=5)
    for _ in range(30):  # a minute in which no click can come: the order must wait
        clock.now += 2
        assert seq.release(broker.caught_up, stalled) == []
    delayed["clicks"] = False  # the broker answers, nothing is on the way, and still no click
    clock.now += 9
    assert seq.release(broker.caught_up, stalled) == []  # the wait counts from the delay's end
    clock.now += 2
    assert offsets(seq.release(broker.caught_up, stalled)) == [("orders", 0)]
    assert seq.forced == 1


def test_a_refused_message_at_the_end_of_a_partition_leaves_it_caught_up(clock: Clock) -> None:
    seq = PartitionSequencer(("clicks", "orders"), max_wait=10)
    broker = Broker({("clicks", 0): 2, ("orders", 0): 1}, {("clicks", 0): 5, ("orders", 0): 5})
    seq.push(event("clicks", 0, 10), None, fetched_at=5)
    seq.push(event("orders", 0, 40), None, fetched_at=5)
    assert offsets(seq.release(broker.caught_up)) == [("clicks", 0)]  # clicks/1 may be older
    seq.skip("clicks", 0, 1)  # clicks/1 was garbage: dead-lettered, never held
    assert offsets(seq.release(broker.caught_up)) == [("orders", 0)]
    assert seq.forced == 0


def test_a_revoked_partition_hands_its_held_messages_back(clock: Clock) -> None:
    seq = PartitionSequencer(("clicks", "orders"), max_wait=10)
    held = event("orders", 0, 5, partition=3)
    seq.push(held, "payload", fetched_at=1)
    assert seq.holds(3) and seq.queued() == {("orders", 3): 1}
    assert seq.drop_partition(3) == [(held, "payload")]
    assert not seq.holds(3) and len(seq) == 0


def test_a_rebalance_gives_back_every_held_event_and_forgets_where_each_partition_was(clock: Clock) -> None:
    seq = PartitionSequencer(("clicks", "orders"), max_wait=10)
    first, second = event("orders", 7, 5, partition=0), event("clicks", 2, 9, partition=1)
    seq.push(first, "a", fetched_at=1)
    seq.push(second, "b", fetched_at=1)
    assert sorted(offsets(seq.drop_all())) == [("clicks", 2), ("orders", 7)]
    assert len(seq) == 0 and seq.last_offset("orders", 0) is None and seq.last_offset("clicks", 1) is None


def test_a_limited_release_leaves_the_rest_held_in_order_and_partitions_take_turns(clock: Clock) -> None:
    seq = PartitionSequencer(("clicks", "orders"), max_wait=10)
    broker = Broker(
        {("clicks", p): 5 for p in (0, 1)} | {("orders", p): 0 for p in (0, 1)},
        {(t, p): 5 for t in ("clicks", "orders") for p in (0, 1)},
    )
    for p in (0, 1):
        for offset in range(5):
            seq.push(event("clicks", offset, 10 * offset, partition=p), None, fetched_at=5)
    rounds = [seq.release(broker.caught_up, limit=3) for _ in range(4)]
    assert [len(r) for r in rounds] == [3, 3, 3, 1]
    firsts = [r[0][0].message.partition for r in rounds]
    assert firsts == [0, 1, 0, 1]  # each call starts with the other partition
    for p in (0, 1):
        mine = [e.message.offset for r in rounds for e, _ in r if e.message.partition == p]
        assert mine == [0, 1, 2, 3, 4]  # nothing lost, nothing reordered
    assert len(seq) == 0 and seq.release(broker.caught_up, limit=3) == []
