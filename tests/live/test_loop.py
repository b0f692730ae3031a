"""The processing loop without a broker (fake consumer, admin and transport; real RocksDB and core):
a recommendation leaves in the round that made it, a checkpoint completes beside the next rounds,
which read through its writes, and only then do the local stores and the commit follow."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from streams.config import STATE_TABLE, Settings
from streams.core.catalog import CatalogItem
from streams.core.config import RulesConfig
from streams.core.processor import Processor
from streams.live.delivery import Delivery
from streams.live.local_index import LocalIndexDB, RocksTimerIndex, RocksWatchIndex
from streams.live.loop import LoopOptions, ProcessingLoop
from streams.live.metrics import WorkerMetrics
from streams.live.outputs import OutputSink
from streams.live.partitions import OwnedPartitions
from streams.live.rocks import MIB, RocksMemory
from streams.live.watermarks import HighWatermarks
from streams.logs import LogRecord
from tests.core.fakes import FakeRecommender
from tests.live.test_checkpoint import RecordingTransport
from tests.live.test_delivery import FakeConsumer, FakeMessage
from tests.live.test_watermarks import FakeAdmin

T0 = 1_700_000_000_000
CHANGELOG = Settings().changelog_topic(STATE_TABLE)


@dataclass
class EventMessage(FakeMessage):
    _key: bytes = b""
    _value: bytes = b""

    def key(self) -> bytes | None:
        return self._key

    def value(self) -> bytes | None:
        return self._value


class ReadyCatalog:
    """A catalog follower with nothing to follow."""

    ready = True
    items: dict[str, CatalogItem] = {}
    on_update: Any = None

    def start(self) -> None: ...

    def poll(self) -> None: ...

    def close(self) -> None: ...


def view(user: str, n: int) -> EventMessage:
    value = {"event_id": f"e{n}", "user_id": user, "type": "view", "item_id": f"sku-{n}", "ts": T0 + n}
    record = LogRecord("clicks", user, T0 + n, value=value)
    return EventMessage("clicks", 0, n, T0 + n, _key=user.encode(), _value=record.wire_value())


@dataclass
class Setup:
    loop: ProcessingLoop
    consumer: FakeConsumer
    admin: FakeAdmin
    transport: RecordingTransport

    def round_with(self, *messages: EventMessage) -> None:
        """One round reading `messages`, and one more once the broker says orders has nothing."""
        self.consumer.batches.append(list(messages))
        self.loop.run_round()
        # Within the millisecond of the last answer, that answer still counts and nothing is asked.
        if not self.admin.futures[("orders", 0)].done():
            self.admin.answer(("orders", 0), 0)
        self.loop.run_round()

    def produced(self, topic: str) -> list[object]:
        return [args[1] for call, args in self.transport.calls if call == "produce" and args[0] == topic]  # type: ignore[index]


@pytest.fixture
def setup(tmp_path: Path) -> Setup:
    settings = Settings(partitions=1, data_dir=str(tmp_path))
    memory = RocksMemory(cache_bytes=16 * MIB, write_buffer_bytes=4 * MIB)
    processor = Processor(FakeRecommender(), RulesConfig(enabled_triggers=()))
    local = LocalIndexDB(tmp_path / "index", memory)
    watchers = RocksWatchIndex(local)
    consumer, admin, transport = FakeConsumer(), FakeAdmin(), RecordingTransport()
    metrics = WorkerMetrics()
    loop = ProcessingLoop(
        settings=settings,
        processor=processor,
        delivery=Delivery(consumer, ("clicks", "orders"), HighWatermarks(admin)),  # type: ignore[arg-type]
        transport=transport,
        partitions=OwnedPartitions(
            tmp_path / "partitions", memory, processor, RocksTimerIndex(local), watchers, 4 * MIB
        ),
        sink=OutputSink(settings, metrics),
        catalog=ReadyCatalog(),  # type: ignore[arg-type]
        watchers=watchers,
        metrics=metrics,
        restore=lambda store, partition, observe: 0,
        publish=lambda user, message: None,
        options=LoopOptions(commit_interval=3600, tick_seconds=None),  # checkpoints when the test says
    )
    loop.subscribe()
    consumer.assign(("clicks", 0), ("orders", 0))
    return Setup(loop, consumer, admin, transport)


def test_a_recommendation_leaves_in_its_round_and_the_checkpoint_never_holds_up_the_next(
    setup: Setup,
) -> None:
    loop, transport = setup.loop, setup.transport
    setup.round_with(view("u1", 0))
    assert setup.produced("recommendations") == [b"u1"]  # before any checkpoint
    assert setup.produced(CHANGELOG) == []
    store = loop.partitions.tasks[0].store
    assert store.get(STATE_TABLE, b"u1") is None and loop.load_state(0, "u1") is not None  # pending

    transport.answering = False  # the broker is slow to acknowledge
    loop.checkpoint()
    assert loop.completing is not None
    setup.round_with(view("u1", 1), view("u2", 2))
    assert setup.produced("recommendations") == [b"u1", b"u1", b"u2"]  # not held up
    assert setup.produced(CHANGELOG) == []  # outputs not acknowledged yet
    state = loop.load_state(0, "u1")
    assert state is not None and state.counters == {"view": 2}  # the completing and pending writes
    assert store.get(STATE_TABLE, b"u1") is None

    transport.answering = True
    loop.run_round()  # outputs acknowledged: the changelog goes
    loop.run_round()  # changelog acknowledged: commit, then the local store
    assert setup.produced(CHANGELOG) == [b"u1"]
    assert loop.completing is None and store.get(STATE_TABLE, b"u1") is not None
    assert ("commit", {("clicks", 0): 1}) in transport.calls
    assert loop.committed == {("clicks", 0): 1}

    loop.checkpoint(wait=True)  # the rounds since: u1 and u2, each written once
    assert setup.produced(CHANGELOG) == [b"u1", b"u1", b"u2"]
    assert loop.committed == {("clicks", 0): 3}
    state = loop.load_state(0, "u1")
    assert state is not None and state.counters == {"view": 2}


def test_a_commit_interval_that_passes_while_the_broker_is_slow_waits_for_it_without_blocking_rounds(
    setup: Setup,
) -> None:
    loop, transport = setup.loop, setup.transport
    setup.round_with(view("u1", 0))
    transport.answering = False
    loop.checkpoint()
    first = loop.completing
    loop.options.commit_interval = 0.0  # every round is past the interval from now on
    setup.round_with(view("u1", 1), view("u2", 2))  # returns: nothing waits for acknowledgements
    assert loop.completing is first and loop.pending  # the second checkpoint has not begun
    assert setup.produced("recommendations") == [b"u1", b"u1", b"u2"]
    assert loop._wait() > 0  # nor does the loop spin meanwhile

    transport.answering = True
    for _ in range(4):
        loop.run_round()
    assert loop.completing is None and not loop.pending  # the first completed, then the second
    assert setup.produced(CHANGELOG) == [b"u1", b"u1", b"u2"]
    assert loop.committed == {("clicks", 0): 3}
