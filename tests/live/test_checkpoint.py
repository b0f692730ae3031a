"""The checkpoint order with a recording transport: outputs, changelog, commit, local write."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pytest

from streams.config import PARTITION_TABLE, STATE_TABLE
from streams.live.checkpoint import (
    Acks,
    Checkpoint,
    Completion,
    DeliveryFailed,
    Record,
    TopicPartition,
    complete,
)
from streams.live.partition_store import PartitionStore
from streams.live.rocks import MIB, RocksMemory


class RecordingTransport:
    """Acknowledges everything produced so far when polled (the `fail_poll`-th poll fails it)."""

    def __init__(self, fail_poll: int | None = None, commit_ok: bool = True) -> None:
        self.calls: list[tuple[str, object]] = []
        self.next_offset: dict[TopicPartition, int] = {}
        self.unanswered: list[tuple[TopicPartition, int, Acks]] = []
        self.polls = 0
        self.fail_poll = fail_poll
        self.commit_ok = commit_ok
        self.answering = True

    def produce(self, record: Record, acks: Acks) -> None:
        tp = (record.topic, record.partition if record.partition is not None else 0)
        offset = self.next_offset.get(tp, 0)
        self.next_offset[tp] = offset + 1
        self.unanswered.append((tp, offset, acks))
        acks.sent()
        self.calls.append(("produce", (record.topic, record.key)))

    def poll(self, timeout: float) -> None:
        if not self.answering or not self.unanswered:
            return
        self.polls += 1
        self.calls.append(("acks", self.polls))
        for tp, offset, acks in self.unanswered:
            if self.polls == self.fail_poll:
                acks.failed("broker gone")
            else:
                acks.acknowledged(tp, offset)
        self.unanswered.clear()

    def commit(self, offsets: Mapping[TopicPartition, int], wait: bool = True) -> bool:
        self.calls.append(("commit", dict(offsets)))
        return self.commit_ok


def changelog(table: str) -> str:
    return f"app-{table}-changelog"


@pytest.fixture
def stores(tmp_path: Path) -> dict[int, PartitionStore]:
    memory = RocksMemory(cache_bytes=16 * MIB, write_buffer_bytes=4 * MIB)
    return {p: PartitionStore(tmp_path / f"p{p}", memory) for p in (0, 1)}


def round_of_two_events() -> Checkpoint:
    checkpoint = Checkpoint()
    checkpoint.send(Record("recommendations", b"u1", b"rec-1"))
    checkpoint.put(0, STATE_TABLE, b"u1", b"state after event 1")
    checkpoint.send(Record("recommendations", b"u1", b"rec-2"))
    checkpoint.put(0, STATE_TABLE, b"u1", b"state after event 2")
    checkpoint.put(0, PARTITION_TABLE, b"p0", b"partition")
    checkpoint.processed("clicks", 0, 11)
    checkpoint.processed("clicks", 0, 12)
    return checkpoint


def test_outputs_then_changelog_then_commit_then_the_local_write(stores: dict[int, PartitionStore]) -> None:
    transport = RecordingTransport()
    assert complete(round_of_two_events(), transport, stores, changelog)
    assert transport.calls == [
        ("produce", ("recommendations", b"u1")),
        ("produce", ("recommendations", b"u1")),
        ("acks", 1),
        # one changelog record per changed key, whatever the number of its events
        ("produce", (changelog(STATE_TABLE), b"u1")),
        ("produce", (changelog(PARTITION_TABLE), b"p0")),
        ("acks", 2),
        ("commit", {("clicks", 0): 12}),
    ]
    assert stores[0].get(STATE_TABLE, b"u1") == b"state after event 2"
    assert stores[0].changelog_offset(STATE_TABLE) == 0
    assert stores[0].changelog_offset(PARTITION_TABLE) == 0
    assert list(stores[1].items(STATE_TABLE)) == []


@pytest.mark.parametrize("failing_poll", [1, 2])
def test_an_unacknowledged_record_commits_nothing_and_writes_nothing_locally(
    stores: dict[int, PartitionStore], failing_poll: int
) -> None:
    transport = RecordingTransport(fail_poll=failing_poll)
    with pytest.raises(DeliveryFailed):
        complete(round_of_two_events(), transport, stores, changelog)
    assert not any(call[0] == "commit" for call in transport.calls)
    if failing_poll == 1:  # no state may reach the changelog before its outputs are on their topics
        assert not any(call == ("produce", (changelog(STATE_TABLE), b"u1")) for call in transport.calls)
    assert stores[0].get(STATE_TABLE, b"u1") is None and stores[0].changelog_offset(STATE_TABLE) == -1


def test_a_failed_commit_still_brings_the_local_copy_up_to_the_changelog(
    stores: dict[int, PartitionStore],
) -> None:
    transport = RecordingTransport(commit_ok=False)
    assert not complete(round_of_two_events(), transport, stores, changelog)
    assert stores[0].get(STATE_TABLE, b"u1") == b"state after event 2"


def test_an_empty_round_commits_nothing() -> None:
    checkpoint = Checkpoint()
    assert not checkpoint
    transport = RecordingTransport()
    assert complete(checkpoint, transport, {}, changelog)
    assert transport.calls == []


def test_a_completion_takes_each_step_only_once_the_broker_answered_and_never_waits(
    stores: dict[int, PartitionStore],
) -> None:
    transport = RecordingTransport()
    transport.answering = False
    completion = Completion(round_of_two_events(), transport, stores, changelog)
    for _ in range(3):  # the loop goes on meanwhile: nothing beyond the outputs is sent
        assert not completion.advance()
    assert [c for c in transport.calls if c[0] == "produce"] == [("produce", ("recommendations", b"u1"))] * 2
    assert completion.read(0, STATE_TABLE, b"u1", None) == b"state after event 2"  # read through
    assert stores[0].get(STATE_TABLE, b"u1") is None
    transport.answering = True
    assert not completion.advance()  # outputs answered: the changelog is on its way
    assert stores[0].get(STATE_TABLE, b"u1") is None and not any(c[0] == "commit" for c in transport.calls)
    assert completion.advance() and completion.committed
    assert transport.calls[-1] == ("commit", {("clicks", 0): 12})
    assert stores[0].get(STATE_TABLE, b"u1") == b"state after event 2"
