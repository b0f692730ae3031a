"""The live adapter: Faust agents feeding `clicks`, `orders` and `catalog` through the pure core.

The agent micro-batches events, decodes and validates them, loads the users' states from a RocksDB
table (changelog-backed), hands the batch to `Processor.process_batch` (one model call per batch),
sends the outputs, waits until Kafka has them, and only then stores the states. So a crash at any
point re-delivers events whose outputs may be missing, and the deterministic output ids make the
re-emission de-duplicable. Delivery is at-least-once (Faust's exactly_once has open duplicate
bugs); the offset watermark in each state makes a re-delivered event a no-op for the state.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import faust
import msgpack
from faust.types import TP, EventT, StreamT

from streams.codec import REPLAY_HEADER, encode_value, header_value
from streams.config import INPUT_TOPICS, LATEST_TABLE, PARTITION_TABLE, STATE_TABLE, Settings
from streams.core.catalog import CatalogItem
from streams.core.config import RulesConfig
from streams.core.demand import DEMAND
from streams.core.events import Position
from streams.core.processor import (
    PROMOTION_TRIGGERS,
    RECOMMENDATIONS,
    Incoming,
    Output,
    PartitionState,
    Processor,
)
from streams.core.recommend import Recommender
from streams.core.segments import AUDIENCE_SEGMENTS
from streams.core.state import StateLimits, UserState
from streams.deadletters import dead_letter_value
from streams.errors import BadMessage
from streams.ingest import parse_user_event
from streams.kafka.clients import client_options, faust_credentials
from streams.live.acks import AckOrder
from streams.live.catalog import CatalogFollower
from streams.live.consumer_guards import acknowledge_missing, guard_commits, pause, resume, withhold
from streams.live.context import PartitionContexts
from streams.live.contiguity import Admission, InFlightWatch, OffsetContiguity
from streams.live.fetch import FetchView
from streams.live.liveness import StallDetector
from streams.live.local_index import LocalIndexDB, RocksTimerIndex, RocksWatchIndex
from streams.live.malloc import TRIM_EVERY_SECONDS, release_free_memory
from streams.live.metrics import WorkerMetrics
from streams.live.rocks import MIB, RocksMemory
from streams.live.sequencer import PartitionSequencer
from streams.live.store import AckedTable, AckedWriteStore
from streams.live.tables import decode_state, encode_state
from streams.partitioning import partition_for
from streams.redaction import user_ref

log = logging.getLogger(__name__)

PAUSE_AT = 2000  # held events of one topic-partition before it is paused
RESUME_AT = 500
# A consumer that reaches the broker gets a fetch response at least every 1.5 s (Faust's
# fetch_max_wait_ms) while nothing fetched waits: none, for any partition, for this long means
# unreachable. (One partition's own responses stop while its fetched records wait to be handed out.)
UNANSWERED_AFTER_MS = 5000
# Records handed out by the consumer that have not reached the agent this long were dropped on the
# way (see Worker._lost_on_the_way) and are fetched again.
IN_FLIGHT_LIMIT_S = 30.0

RAW = {"key_type": bytes, "value_type": bytes, "key_serializer": "raw", "value_serializer": "raw"}


class Worker:
    """Builds the Faust app for one worker process."""

    def __init__(
        self,
        settings: Settings,
        rules: RulesConfig | None = None,
        recommender: Recommender | None = None,
        batch_max: int = 256,
        batch_within: float = 0.005,
        tick_seconds: float | None = 5.0,
    ) -> None:
        self.settings = settings
        self.rules = rules or RulesConfig()
        self.batch_max = batch_max
        self.batch_within = batch_within
        datadir = Path(settings.data_dir) / settings.app_id
        datadir.mkdir(parents=True, exist_ok=True)
        self.app = faust.App(
            settings.app_id,
            broker=f"kafka://{settings.bootstrap}",
            broker_credentials=faust_credentials(settings),
            store="rocksdb://",
            # One folder per app id: tables of different apps must never share RocksDB files.
            datadir=str(datadir),
            topic_partitions=settings.partitions,
            topic_replication_factor=settings.replication,
            processing_guarantee="at_least_once",
            producer_acks=-1,
            # Outputs, and three changelogs, leave per batch: a few ms of linger turns hundreds of tiny
            # produce requests into a few (+36 % events/s at maximum rate in `streams bench`).
            producer_linger=settings.producer_linger_ms / 1000.0,
            web_host=settings.web_host,
            web_port=settings.web_port,
            canonical_url=settings.canonical_url(),
            web_in_thread=False,
            autodiscover=False,
            table_cleanup_interval=3600.0,
            broker_commit_interval=1.0,
            # A SIGKILLed worker holds its partitions until the session times out: keep that short.
            broker_session_timeout=10.0,
            broker_heartbeat_interval=2.0,
            # Faust's /table/{name}/{key} would serve any user's raw state without a token, and
            # /router the cluster's layout; our views route through app.router without them.
            web_tables_enabled=False,
            web_router_enabled=False,
            # Local RocksDB writes wait for their changelog acknowledgement (see streams.live.store).
            Table=AckedTable,
        )
        app = self.app
        self.inputs = app.topic(
            *(settings.topic(t) for t in INPUT_TOPICS), partitions=settings.partitions, **RAW
        )
        self.out = {
            name: app.topic(settings.topic(name), **RAW)
            for name in (RECOMMENDATIONS, PROMOTION_TRIGGERS, AUDIENCE_SEGMENTS, DEMAND)
        }
        self.dead_letters = app.topic(settings.topic("dead-letters"), **RAW)
        self.rocks_memory = RocksMemory(
            cache_bytes=settings.rocksdb_cache_mb * MIB,
            write_buffer_bytes=settings.rocksdb_write_buffer_mb * MIB,
        )
        # bytes types make Faust store keys and values untouched ("raw"); we encode msgpack ourselves.
        table_args = {
            "default": None,
            "partitions": settings.partitions,
            "key_type": bytes,
            "value_type": bytes,
            "options": {**settings.rocksdb_options(), "memory": self.rocks_memory},
        }
        self.states = app.Table(STATE_TABLE, **table_args)
        self.partition_table = app.Table(PARTITION_TABLE, **table_args)
        self.latest = app.Table(LATEST_TABLE, **table_args)
        self.catalog = CatalogFollower(
            client_options(settings),
            settings.topic("catalog"),
            on_update=self._catalog_changed,
            max_bytes=settings.max_message_bytes,
        )
        # Derived from the states, rebuilt per assigned partition; in RocksDB so memory stays flat.
        self.local_index = LocalIndexDB(datadir / "local-index", self.rocks_memory)
        self.watchers = RocksWatchIndex(self.local_index)  # item -> local users who saw it
        self._indexed_partitions: set[int] = set()  # partitions whose users the watch index holds
        self.contexts = PartitionContexts(settings.topic(INPUT_TOPICS[0]))
        self.processor = Processor(
            recommender,
            self.rules,
            StateLimits(recent_events=settings.recent_events),
            catalog=self.catalog.items,
        )
        self.timers = RocksTimerIndex(self.local_index)
        self.partitions: dict[int, PartitionState] = {}
        self.wall_at_watermark: dict[int, float] = {}
        self.metrics = WorkerMetrics()
        self.counts = {
            "events": 0,
            "applied": 0,
            "redelivered": 0,
            "dead_letters": 0,
            "recommendations": 0,
            "triggers": 0,
            "segment_events": 0,
            "demand": 0,
            "given_back": 0,
        }
        self.subscribers: dict[str, set[asyncio.Queue[dict[str, Any]]]] = {}
        self.lock = asyncio.Lock()  # batches and ticks never interleave their table writes
        # The wait is a liveness valve only: normally the other topic is caught up or its data is coming.
        self.sequencer = PartitionSequencer(tuple(settings.topic(t) for t in INPUT_TOPICS), max_wait=10.0)
        self._stream: StreamT | None = None
        self.acks = AckOrder(self._ack)
        self.contiguity = OffsetContiguity()
        self._fetch: FetchView | None = None
        self.stall = StallDetector(after=settings.stall_seconds)
        self._paused: set[TP] = set()
        self._in_flight = InFlightWatch(IN_FLIGHT_LIMIT_S)
        self._in_flight_checked = 0.0  # time.monotonic() of the last _lost_on_the_way
        self._last_hold_report = 0.0
        self._background: set[asyncio.Future[None]] = set()
        app.agent(self.inputs, name="user-events")(self._consume)
        app.on_partitions_revoked.connect(self._on_revoked)
        if tick_seconds:
            app.timer(tick_seconds, name="wall-clock-timers")(self._tick)
        app.timer(0.05, name="sequencer-drain")(self._drain)
        app.timer(TRIM_EVERY_SECONDS, name="release-free-memory")(self._release_free_memory)
        app.task(self._start_catalog)
        from streams.live.web import register_views

        register_views(self)

    def databases(self) -> list[Any]:
        """Every RocksDB database the worker has open: its tables' partitions and the local index."""
        stores = [table.data for table in (self.states, self.partition_table, self.latest)]
        acked = [store for store in stores if isinstance(store, AckedWriteStore)]
        return [*(db for store in acked for db in store.open_databases()), self.local_index.db]

    # -- state access (always inside a partition context) ---------------------------------------------

    def load_state(self, user_id: str) -> UserState | None:
        raw = self.states.get(user_id.encode())
        return None if raw is None else decode_state(raw)

    def event_time(self, user_id: str) -> int:
        """The user's partition's event time (its watermark): "now" for the profile and context."""
        part = self.partitions.get(self.partition_for(user_id))
        return part.watermark if part is not None else -1

    def _partition_state(self, partition: int) -> PartitionState:
        part = self.partitions.get(partition)
        if part is None:
            with self.contexts.partition(partition):
                raw = self.partition_table.get(f"p{partition}".encode())
                self._index_timers(partition)
            part = (
                PartitionState.from_wire(msgpack.unpackb(raw, raw=False))
                if raw is not None
                else self.processor.new_partition_state()
            )
            self.partitions[partition] = part
            self.wall_at_watermark[partition] = time.time()
        return part

    def _index_timers(self, partition: int) -> None:
        """Rebuild the partition's due-timer index from its states (once per assignment), and the
        watch index for its users if this worker never owned the partition before."""
        store = self.states.data
        assert isinstance(store, AckedWriteStore)
        fresh = partition not in self._indexed_partitions
        self._indexed_partitions.add(partition)

        def states() -> Iterator[UserState]:  # one at a time: a partition may hold a million
            for key, raw in store.partition_items(partition):
                if not isinstance(key, bytes) or key.startswith(b"__faust"):
                    continue
                state = decode_state(raw)
                if fresh:
                    self.watchers.add_unindexed((state,))
                else:
                    self.watchers.note(state)
                yield state

        entries = ((due, s.user_id, kind) for s in states() for kind, due in s.timers.items())
        count = self.timers.rebuild_partition(partition, entries)
        log.info("partition %d: %d pending timers indexed", partition, count)

    async def _on_revoked(self, sender: Any, revoked: set[Any], **_: Any) -> None:
        for tp in revoked:
            self._paused.discard(tp)
            self._in_flight.forget(tp.topic, tp.partition)
            self.sequencer.drop_partition(tp.partition)
            self.acks.forget_partition(tp.partition)
            self.contiguity.forget_partition(tp.partition)
            self.partitions.pop(tp.partition, None)
            self.timers.drop_partition(tp.partition)

    # -- user events ----------------------------------------------------------------------------------

    async def _consume(self, stream: StreamT) -> None:
        self._stream = stream
        guard_commits(self.app.consumer)
        async for events in stream.take_events(self.batch_max, self.batch_within):
            for event in events:
                if not await self._in_order(event):
                    continue
                self.acks.track(event)
                incoming = await self._admit(event)
                if incoming is not None:
                    message = event.message
                    fetched_at = self.fetch.polled_at(TP(message.topic, message.partition))
                    self.sequencer.push(event, incoming, fetched_at)
            await self._drain()
            self._flow_control()

    async def _in_order(self, event: EventT) -> bool:
        """False for a record past a hole in its partition's offsets (see streams.live.contiguity)."""
        message = event.message
        topic, partition = message.topic, message.partition
        verdict = self.contiguity.admit(
            topic, partition, message.offset, lambda: self._last_processed(topic, partition) + 1
        )
        if verdict is Admission.ACCEPT:
            return True
        if verdict is Admission.ACCEPT_HOLE:
            hole = self.contiguity.holes_accepted[-1]
            log.error(
                "%s[%d]: offsets %d..%d never arrived after %d seeks: taken as holding no records",
                topic,
                partition,
                hole.missing_from,
                hole.next_seen - 1,
                self.contiguity.max_seeks,
            )
            acknowledge_missing(
                self.app.consumer, TP(topic, partition), range(hole.missing_from, hole.next_seen)
            )
            return True
        withhold(self.app.consumer, message)
        if verdict is Admission.SEEK:
            missing = self.contiguity.missing_from(topic, partition)
            log.warning(
                "%s[%d]: offsets from %d did not reach the worker (next came %d): seeking back",
                topic,
                partition,
                missing,
                message.offset,
            )
            await self.app.consumer.seek(TP(topic, partition), missing)
        return False

    def _flow_control(self) -> None:
        """Pause a topic-partition that has plenty waiting, so the fetcher brings the one it waits
        for (Kafka Streams pauses full partition buffers for the same reason)."""
        consumer = self.app.consumer
        queued = self.sequencer.queued()
        pausing = [TP(t, p) for (t, p), n in queued.items() if n >= PAUSE_AT and TP(t, p) not in self._paused]
        resuming = [tp for tp in self._paused if queued.get((tp.topic, tp.partition), 0) < RESUME_AT]
        if pausing:
            pause(consumer, pausing)
            self._paused.update(pausing)
        if resuming:
            resume(consumer, resuming)
            self._paused.difference_update(resuming)

    async def _drain(self) -> None:
        """Process what the sequencer releases; ack only afterwards so a crash re-delivers it."""
        if self.app.rebalancing and len(self.acks):
            async with self.lock:
                self._give_back()
            return
        if self._stream is None or not self.catalog.ready.is_set():
            return  # never recommend from a half-loaded catalog: events wait in the sequencer
        for topic, partition, offset in self.contiguity.overdue():
            log.warning("%s[%d]: offset %d still missing: seeking back again", topic, partition, offset)
            await self.app.consumer.seek(TP(topic, partition), offset)
        # Once a second is enough to time a 30 s limit; _drain runs every batch and every 50 ms.
        if not self.app.rebalancing and time.monotonic() - self._in_flight_checked >= 1.0:
            self._in_flight_checked = time.monotonic()
            for topic, partition, offset in self._lost_on_the_way():
                log.warning(
                    "%s[%d]: records from %d handed out %.0f s ago never arrived: fetching them again",
                    topic,
                    partition,
                    offset,
                    IN_FLIGHT_LIMIT_S,
                )
                self.contiguity.repair(topic, partition, offset)
                await self.app.consumer.seek(TP(topic, partition), offset)
        async with self.lock:
            ready = self.sequencer.release(self._caught_up, self._stalled)
            self._report_long_holds()
            if not ready:
                return
            try:
                await self.handle_batch(ready)
            finally:
                for event, _ in ready:
                    await self.acks.done(event)
        self._flow_control()

    def _report_long_holds(self) -> None:
        """Held events wait for the other topic; a wait far past the valve's limit means the order
        rule is stuck. Say what each awaited topic-partition looks like, once a minute at most."""
        now = time.monotonic()
        if now - self._last_hold_report < 60:
            return
        for partition, since in self.sequencer.waiting_since().items():
            if now - since < 3 * self.sequencer.max_wait:
                continue
            self._last_hold_report = now
            for topic in self.sequencer.topics:
                state = self.fetch.state(TP(topic, partition))
                log.warning(
                    "partition %d: events held %.0f s; %s: last seen %s, fetch %s",
                    partition,
                    now - since,
                    topic,
                    self._last_seen(topic, partition),
                    state,
                )

    def _give_back(self) -> None:
        """A rebalance began. Faust revokes partitions only once every event it handed out is acked
        (`consumer.wait_empty`) and fetches nothing meanwhile, so an event held for order would hold
        the rebalance until the session times out; releasing it early would break the order. Neither:
        every event not acknowledged yet is dropped un-acked. Its offset stays uncommitted (the
        commit guards see to that), so the partition's owner after the rebalance fetches it again."""
        self.sequencer.drop_all()
        given_back = self.acks.give_back()
        for event in given_back:
            message = event.message
            withhold(self.app.consumer, message)
            # Usually the rebalance seeks the partition back; when the seek came first (a give-back
            # while the recovery finishes), the next record shows the hole and the worker seeks.
            self.contiguity.rewind(message.topic, message.partition, message.offset)
        self._paused.clear()
        self._in_flight.reset()
        if given_back:
            self.counts["given_back"] += len(given_back)
            log.info("rebalance: %d events given back un-acked, to be fetched again", len(given_back))

    async def _ack(self, event: EventT) -> None:
        assert self._stream is not None
        await self._stream.ack(event)

    async def _start_catalog(self) -> None:
        self.catalog.start()
        await self.catalog.ready.wait()
        log.info("catalog loaded: %d items", len(self.catalog.items))

    @property
    def fetch(self) -> FetchView:
        if self._fetch is None:
            self._fetch = FetchView(self.app.consumer)
        return self._fetch

    def _idle(self, partition: int) -> bool:
        """Nothing held and nothing more to fetch for this partition on any input topic."""
        if self.sequencer.holds(partition):
            return False
        return all(
            self._caught_up(topic, partition, self.sequencer.last_offset(topic, partition), 0)
            for topic in self.sequencer.topics
        )

    def input_lag(self) -> int:
        """Events on the assigned input partitions not processed yet (as far as the fetches know)."""
        lag = 0
        for tp in self.app.consumer.assignment():
            logical = self.settings.logical(tp.topic)
            if logical not in INPUT_TOPICS:
                continue
            state = self.fetch.state(tp)
            if state is None or state.highwater is None or tp.partition not in self.partitions:
                continue
            lag += max(0, state.highwater - self.next_to_process(logical, tp.partition))
        return lag

    def next_to_process(self, logical: str, partition: int) -> int:
        """The input offset after the last one this worker processed (0: none yet)."""
        part = self.partitions.get(partition)
        return part.offsets.get(f"{logical}/{partition}", -1) + 1 if part is not None else 0

    def demand_late_events(self) -> int:
        """Events too late for every demand window that held them (see streams/core/demand.py)."""
        return sum(p.demand.late for p in self.partitions.values() if p.demand is not None)

    def processed(self) -> int:
        return self.counts["applied"] + self.counts["redelivered"] + self.counts["dead_letters"]

    def _last_seen(self, topic: str, partition: int) -> int:
        last_offset = self.sequencer.last_offset(topic, partition)
        if last_offset is None:
            # Nothing read since assignment: what this partition processed before (its state
            # survives restarts through the changelog) is where the topic is caught up to.
            last_offset = self._last_processed(topic, partition)
        return last_offset

    def _last_processed(self, topic: str, partition: int) -> int:
        logical = self.settings.logical(topic) or topic
        return self._partition_state(partition).offsets.get(f"{logical}/{partition}", -1)

    def _broker_answering(self) -> bool:
        answered = self.fetch.last_answer()
        return answered is not None and time.time() * 1000 - answered < UNANSWERED_AFTER_MS

    def _lost_on_the_way(self) -> list[tuple[str, int, int]]:
        """(topic, partition, first missing offset) of each input partition whose handed-out
        records never reached the agent (`InFlightWatch`): they are to be fetched again."""
        if not self._broker_answering():
            self._in_flight.reset()  # a silent broker delays everything
            return []
        lost = []
        for tp in self.app.consumer.assignment():
            if self.settings.logical(tp.topic) not in INPUT_TOPICS:
                continue
            state = self.fetch.state(tp)
            if state is None or state.position is None:
                continue
            expected = self.contiguity.expected(tp.topic, tp.partition)
            if expected is None:
                expected = self._last_processed(tp.topic, tp.partition) + 1
            if self._in_flight.lost(tp.topic, tp.partition, state.position, expected):
                lost.append((tp.topic, tp.partition, expected))
        return lost

    def _stalled(self, topic: str, partition: int) -> bool:
        """Nothing of this topic-partition is on its way to the sequencer although the broker
        answers fetches for it: records the consumer handed out but the agent has not reached yet
        (a busy process, or lost on the way and fetched again: `_lost_on_the_way`), records on the
        broker not fetched yet, and a silent broker (restarting) are delays, not a stall."""
        tp = TP(topic, partition)
        state = self.fetch.state(tp)
        if state is None or state.polled_at is None or state.position is None:
            return False
        if not self._broker_answering():
            return False
        # Records the broker has but the fetcher has not brought yet are on their way like those
        # handed out: a partition whose first fetch after an assignment is still to come is slow,
        # not stalled, and opening the valve then would let the other topic overtake it.
        behind = state.highwater is not None and state.position < state.highwater
        return state.position <= self._last_seen(topic, partition) + 1 and not behind

    def _caught_up(self, topic: str, partition: int, last_offset: int | None, since: int) -> bool:
        state = self.fetch.state(TP(topic, partition))
        if state is None:  # not assigned (mid-rebalance): nothing to wait for here
            return True
        if last_offset is None:
            last_offset = self._last_seen(topic, partition)
        return (state.polled_at or 0) >= since and state.caught_up(last_offset)

    async def _admit(self, event: EventT) -> Incoming | None:
        """Decode and validate; bad input goes to dead-letters at once and never waits in order."""
        message = event.message
        logical = self.settings.logical(message.topic) or message.topic
        self.metrics.events_in.labels(logical).inc()
        self.counts["events"] += 1
        try:
            parsed = parse_user_event(
                logical,
                message.key,
                message.value,
                message.headers,
                self.settings.max_message_bytes,
                int(message.timestamp * 1000) if message.timestamp else None,
            )
        except BadMessage as exc:
            await self._dead_letter(event, exc)
            self.sequencer.skip(message.topic, message.partition, message.offset)
            await self.acks.done(event)
            return None
        replay = header_value(message.headers, REPLAY_HEADER) is not None
        return Incoming(
            parsed, message.partition, Position(logical, message.partition, message.offset), replay
        )

    async def handle_batch(self, entries: list[tuple[EventT, Incoming]]) -> None:
        received = time.perf_counter()
        batch = [incoming for _, incoming in entries]
        if not batch:
            return
        partition_of = {i.event.user_id: i.partition for i in batch}
        for p in {i.partition for i in batch}:
            self._partition_state(p)

        watched: dict[str, set[str]] = {}  # items each loaded user watched: the index agrees with them

        def load(user_id: str) -> UserState | None:
            with self.contexts.partition(partition_of.get(user_id, self.partition_for(user_id))):
                state = self.load_state(user_id)
            watched[user_id] = set(state.watch) if state is not None else set()
            return state

        try:
            result = self.processor.process_batch(batch, load, self.partitions, self.timers)
        except Exception as exc:  # a bug must not stop the partitions: park the batch in dead-letters
            log.exception("batch of %d failed", len(batch))
            for event, _ in entries:
                await self._dead_letter(
                    event, BadMessage("processing_failed", f"{type(exc).__name__}: {exc}")
                )
            return
        self.metrics.model_latency.observe(time.perf_counter() - received)
        self.metrics.batch_size.observe(len(batch))
        outputs = [o for r in result.results for o in r.outputs]
        applied = sum(r.applied for r in result.results)
        self.counts["applied"] += applied
        self.counts["redelivered"] += len(batch) - applied
        self.metrics.applied.inc(applied)
        self.metrics.redelivered.inc(len(batch) - applied)
        await self._send(outputs, latency_from=received)
        partitions = self._owner_partitions(result.states, partition_of)
        self._store(result.states, partitions, result.partitions, watched)

    def _owner_partitions(self, states: Mapping[str, UserState], known: dict[str, int]) -> dict[str, int]:
        return {user: known[user] if user in known else self.partition_for(user) for user in states}

    def partition_for(self, user_id: str) -> int:
        """The partition producers put a user on (Kafka's default murmur2 partitioner; see docs/topics.md)."""
        return partition_for(user_id, self.settings.partitions)

    def _store(
        self,
        states: Mapping[str, UserState],
        partitions: dict[str, int],
        changed: set[int],
        watched: Mapping[str, set[str]] | None = None,
    ) -> None:
        """`watched`: the items each user watched when loaded, if known; the watch index is
        rewritten only for users whose list changed (its update scans the index)."""
        for user, state in states.items():
            if watched is None or state.watch.keys() != watched.get(user):
                self.watchers.note(state)
            with self.contexts.partition(partitions[user]):
                self.states[user.encode()] = encode_state(state)
        for p in changed:
            self.wall_at_watermark[p] = time.time()
            with self.contexts.partition(p):
                self.partition_table[f"p{p}".encode()] = encode_value(self.partitions[p].to_wire())

    async def _send(self, outputs: list[Output], latency_from: float | None = None) -> None:
        """Send and wait for the broker's acknowledgement (before any state is stored)."""
        if not outputs:
            return
        pending = []
        for output in outputs:
            value = output.value
            if output.topic == RECOMMENDATIONS:
                if latency_from is not None:
                    value = {**value, "latency_ms": round((time.perf_counter() - latency_from) * 1000, 3)}
                self.metrics.recommendations.inc()
                self.counts["recommendations"] += 1
            elif output.topic == AUDIENCE_SEGMENTS:
                self.metrics.segment_events.labels(value["segment"], value["action"]).inc()
                self.counts["segment_events"] += 1
            elif output.topic == DEMAND:
                self.metrics.demand.labels(value["scope"]).inc()
                self.counts["demand"] += 1
            else:
                self.metrics.triggers.labels(value["kind"]).inc()
                self.counts["triggers"] += 1
            encoded = encode_value(value)
            pending.append(
                await self.out[output.topic].send(
                    key=output.key.encode(), value=encoded, partition=output.partition
                )
            )
            if output.topic == RECOMMENDATIONS:
                with self.contexts.partition(self.partition_for(output.key)):
                    self.latest[output.key.encode()] = encoded
            if output.topic != DEMAND:  # the SSE feed is per shopper
                self._publish(output.key, {"topic": output.topic, "value": value})
        await asyncio.gather(*pending)

    def _publish(self, user_id: str, message: dict[str, Any]) -> None:
        for queue in self.subscribers.get(user_id, ()):
            if queue.qsize() < 100:
                queue.put_nowait(message)

    async def _dead_letter(self, event: EventT, error: BadMessage) -> None:
        message = event.message
        self.counts["dead_letters"] += 1
        self.metrics.dead_letters.labels(error.code).inc()
        # The reason may quote the key and the user_id: the log gets the code and a hashed key only.
        log.info(
            "dead letter %s[%d]@%d %s: %s%s",
            message.topic,
            message.partition,
            message.offset,
            user_ref(message.key, self.settings.log_salt),
            error.code,
            f" ({error.field})" if error.field else "",
        )
        value = dead_letter_value(
            message.topic,
            message.partition,
            message.offset,
            message.key,
            message.value,
            error,
            ts=int(message.timestamp * 1000) if message.timestamp else int(time.time() * 1000),
            max_bytes=self.settings.max_message_bytes,
        )
        await self.dead_letters.send(key=value["key"], value=encode_value(value))

    async def _release_free_memory(self) -> None:
        release_free_memory()

    # -- timers on the wall clock ------------------------------------------------------------------------

    async def _tick(self) -> None:
        """A quiet partition's event time still moves on: fire what the wall clock makes due."""
        if self.app.rebalancing or getattr(self.app, "in_recovery", False):
            return
        async with self.lock:
            for partition, part in list(self.partitions.items()):
                if part.watermark < 0 or not self._idle(partition):
                    continue  # a partition with input to process moves on event time alone
                now = part.watermark + int((time.time() - self.wall_at_watermark[partition]) * 1000)
                due = self.timers.next_due(partition)
                if due is None or due > now - self.rules.allowed_lateness_ms:
                    continue

                def load(user_id: str, p: int = partition) -> UserState | None:
                    with self.contexts.partition(p):
                        return self.load_state(user_id)

                outputs, states = self.processor.advance(partition, now, load, self.timers)
                await self._send(outputs)
                self._store(states, {u: partition for u in states}, set())

    # -- catalog changes ---------------------------------------------------------------------------------

    def _catalog_changed(self, item: CatalogItem) -> None:
        if item.item_id in self.watchers:
            task = asyncio.ensure_future(self._notify_watchers(item))
            self._background.add(task)  # keep a reference until done (asyncio holds only weak ones)
            task.add_done_callback(self._background.discard)

    async def _notify_watchers(self, item: CatalogItem) -> None:
        """Price-drop and back-in-stock triggers for this worker's users who saw the item."""
        async with self.lock:
            owned = {tp.partition for tp in self.app.consumer.assignment()}
            users = [u for u in self.watchers.users(item.item_id) if self.partition_for(u) in owned]

            def load(user_id: str) -> UserState | None:
                with self.contexts.partition(self.partition_for(user_id)):
                    return self.load_state(user_id)

            outputs, states = self.processor.on_catalog(item, users, load)
            await self._send(outputs)
            self._store(states, {u: self.partition_for(u) for u in states}, set())
