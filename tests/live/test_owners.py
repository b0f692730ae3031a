"""PartitionOwners with a fake admin whose group description the test writes: partitions of the
given input topic map to the owning member's client id (its URL), answers are kept for a moment so
HTTP requests do not each cost a broker round trip, and a group that cannot be described owns
nothing rather than failing the request."""

from __future__ import annotations

from concurrent.futures import Future
from types import SimpleNamespace
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException, TopicPartition

from streams.live.owners import KEEP_SECONDS, PartitionOwners

GROUP = "streams"
TOPIC = "t-clicks"
A, B = "http://10.0.0.1:6066", "http://10.0.0.2:6066"


def member(client_id: str, *tps: tuple[str, int], assigned: bool = True) -> SimpleNamespace:
    assignment = SimpleNamespace(topic_partitions=[TopicPartition(t, p) for t, p in tps])
    return SimpleNamespace(client_id=client_id, assignment=assignment if assigned else None)


class FakeAdmin:
    def __init__(self, *members: SimpleNamespace) -> None:
        self.members = list(members)
        self.calls: list[tuple[list[str], dict[str, Any]]] = []
        self.error: KafkaException | None = None
        self.unanswered = False

    def describe_consumer_groups(self, group_ids: list[str], **kwargs: Any) -> dict[str, Future[Any]]:
        self.calls.append((group_ids, kwargs))
        future: Future[Any] = Future()
        if self.error is not None:
            future.set_exception(self.error)
        elif not self.unanswered:
            future.set_result(SimpleNamespace(members=list(self.members)))
        return {group_id: future for group_id in group_ids}


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def owners_of(admin: FakeAdmin, clock: Clock | None = None, timeout: float = 5.0) -> PartitionOwners:
    return PartitionOwners(admin, GROUP, TOPIC, clock=clock or Clock(), timeout=timeout)


def test_partitions_of_the_input_topic_map_to_their_members_url() -> None:
    admin = FakeAdmin(
        member(A, (TOPIC, 0), ("t-orders", 0), (TOPIC, 2)),
        member(B, (TOPIC, 1), ("t-orders", 1), ("t-orders", 3)),
        member("http://joining", assigned=False),  # no assignment yet: owns nothing
    )
    owners = owners_of(admin)
    assert [owners.owner(p) for p in range(4)] == [A, B, A, None]  # 3: only on another topic
    assert admin.calls == [([GROUP], {"request_timeout": 5.0})]  # one description for all four


def test_an_answer_is_kept_for_keep_seconds_then_asked_again() -> None:
    admin, clock = FakeAdmin(member(A, (TOPIC, 0))), Clock()
    owners = owners_of(admin, clock)
    assert owners.owner(0) == A
    admin.members = [member(B, (TOPIC, 0))]  # a takeover
    clock.now += KEEP_SECONDS - 0.01
    assert owners.owner(0) == A  # the kept answer
    assert len(admin.calls) == 1
    clock.now += 0.01
    assert owners.owner(0) == B
    assert len(admin.calls) == 2


def test_fresh_asks_again_at_once() -> None:
    admin, clock = FakeAdmin(member(A, (TOPIC, 0))), Clock()
    owners = owners_of(admin, clock)
    assert owners.owner(0) == A
    admin.members = [member(B, (TOPIC, 0))]
    assert owners.owner(0, fresh=True) == B
    assert len(admin.calls) == 2
    assert owners.owner(0) == B  # and the fresh answer is the one kept
    assert len(admin.calls) == 2


@pytest.mark.parametrize("failure", ["kafka", "timeout"])
def test_a_group_not_described_owns_nothing(failure: str) -> None:
    admin, clock = FakeAdmin(member(A, (TOPIC, 0))), Clock()
    owners = owners_of(admin, clock, timeout=0.01)
    assert owners.owner(0) == A
    if failure == "kafka":
        admin.error = KafkaException(KafkaError(KafkaError._TRANSPORT))
    else:
        admin.unanswered = True  # the future never completes within the timeout
    assert owners.owner(0, fresh=True) is None  # not the stale owner: it may have lost the partition
    admin.error, admin.unanswered = None, False
    clock.now += KEEP_SECONDS
    assert owners.owner(0) == A  # asked again once the failed answer is old
