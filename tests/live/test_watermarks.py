"""HighWatermarks with a fake admin whose answers the test hands out: never blocks, never judges on
a log end older than the waiting event, one request per wait."""

from __future__ import annotations

from collections.abc import Mapping
from concurrent.futures import Future
from types import SimpleNamespace
from typing import Any

from confluent_kafka import KafkaError, KafkaException, TopicPartition

from streams.live.watermarks import HighWatermarks


class FakeAdmin:
    def __init__(self) -> None:
        self.requests: list[list[tuple[str, int]]] = []
        self.futures: dict[tuple[str, int], Future[Any]] = {}

    def list_offsets(
        self, offsets: Mapping[TopicPartition, Any], **_: Any
    ) -> dict[TopicPartition, Future[Any]]:
        self.requests.append(sorted((tp.topic, tp.partition) for tp in offsets))
        out = {}
        for tp in offsets:
            future: Future[Any] = Future()
            self.futures[(tp.topic, tp.partition)] = future
            out[tp] = future
        return out

    def answer(self, tp: tuple[str, int], offset: int) -> None:
        self.futures[tp].set_result(SimpleNamespace(offset=offset))


class Clock:
    def __init__(self) -> None:
        self.now = 1_000

    def __call__(self) -> int:
        return self.now


ORDERS = ("orders", 3)


def test_unknown_until_answered_then_judged_on_the_answer() -> None:
    admin, clock = FakeAdmin(), Clock()
    marks = HighWatermarks(admin, clock)
    assert not marks.caught_up(ORDERS, last_offset=9, since_ms=1_000)
    assert admin.requests == []  # asked for with the other partitions the merge pass waits on
    marks.request_wanted()
    assert not marks.caught_up(ORDERS, last_offset=9, since_ms=1_000)
    marks.request_wanted()
    assert admin.requests == [[ORDERS]]  # one request on its way, not one per call
    marks.collect()
    assert marks.log_end(ORDERS) is None  # not answered yet: collect never waits
    admin.answer(ORDERS, 10)
    marks.collect()
    assert marks.caught_up(ORDERS, last_offset=9, since_ms=1_000)
    assert not marks.caught_up(ORDERS, last_offset=8, since_ms=1_000)  # offset 9 is still to come


def test_a_log_end_asked_before_the_waiting_event_is_not_enough() -> None:
    admin, clock = FakeAdmin(), Clock()
    marks = HighWatermarks(admin, clock)
    marks.request([ORDERS])
    admin.answer(ORDERS, 10)
    marks.collect()
    clock.now = 2_000
    assert not marks.caught_up(ORDERS, last_offset=9, since_ms=1_500)  # asked at 1,000: too old
    marks.request_wanted()
    assert admin.requests == [[ORDERS], [ORDERS]]
    admin.answer(ORDERS, 10)
    marks.collect()
    assert marks.caught_up(ORDERS, last_offset=9, since_ms=1_500)


def test_the_partitions_one_merge_pass_could_not_judge_are_asked_for_in_one_request() -> None:
    admin, clock = FakeAdmin(), Clock()
    marks = HighWatermarks(admin, clock)
    for partition in (2, 0, 1):
        assert not marks.caught_up(("orders", partition), last_offset=0, since_ms=0)
    marks.request_wanted()
    marks.request_wanted()  # nothing new wanted: no request
    assert admin.requests == [[("orders", 0), ("orders", 1), ("orders", 2)]]


def test_one_request_covers_every_waiting_partition_and_a_failure_is_asked_again() -> None:
    admin = FakeAdmin()
    marks = HighWatermarks(admin, Clock())
    marks.request([("orders", 0), ("orders", 1), ("orders", 0)])
    assert admin.requests == [[("orders", 0), ("orders", 1)]]
    admin.futures[("orders", 0)].set_exception(KafkaException(KafkaError(KafkaError._TRANSPORT)))
    admin.answer(("orders", 1), 4)
    marks.collect()
    assert marks.failures == 1 and marks.log_end(("orders", 0)) is None
    assert marks.log_end(("orders", 1)) is not None
    marks.request([("orders", 0)])
    assert admin.requests[-1] == [("orders", 0)]
    marks.forget([("orders", 1)])
    assert marks.log_end(("orders", 1)) is None
