"""Acks in delivery order per topic-partition (streams/live/acks.py), with stand-in Faust events."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from streams.live.acks import AckOrder


@dataclass(eq=False)
class FakeMessage:
    topic: str
    partition: int
    offset: int
    refs: int = 0

    def incref(self) -> None:
        self.refs += 1


@dataclass(eq=False)
class FakeEvent:
    message: FakeMessage


def event(offset: int, topic: str = "clicks", partition: int = 0) -> FakeEvent:
    return FakeEvent(FakeMessage(topic, partition, offset))


def order() -> tuple[AckOrder, list[tuple[str, int, int]]]:
    acked: list[tuple[str, int, int]] = []

    async def ack(e: FakeEvent) -> None:
        acked.append((e.message.topic, e.message.partition, e.message.offset))

    return AckOrder(ack), acked  # type: ignore[arg-type]


def test_a_dead_letter_is_not_acknowledged_ahead_of_a_held_event() -> None:
    acks, acked = order()
    held, refused, other = event(7), event(8), event(3, topic="orders")
    for e in (held, refused, other):
        acks.track(e)  # type: ignore[arg-type]
    assert held.message.refs == 1
    asyncio.run(acks.done(refused))  # type: ignore[arg-type]
    asyncio.run(acks.done(other))  # type: ignore[arg-type]
    assert acked == [("orders", 0, 3)]  # another topic-partition does not wait
    assert acks.waiting() == 1 and len(acks) == 2
    asyncio.run(acks.done(held))  # type: ignore[arg-type]
    assert acked == [("orders", 0, 3), ("clicks", 0, 7), ("clicks", 0, 8)]
    assert len(acks) == 0


def test_a_revoked_partition_is_forgotten_and_later_done_calls_are_ignored() -> None:
    acks, acked = order()
    first, second = event(1, partition=2), event(2, partition=2)
    acks.track(first)  # type: ignore[arg-type]
    acks.track(second)  # type: ignore[arg-type]
    acks.forget_partition(2)
    asyncio.run(acks.done(second))  # type: ignore[arg-type]
    asyncio.run(acks.done(first))  # type: ignore[arg-type]
    assert acked == [] and len(acks) == 0
