"""The processing loop: read a batch, merge it in event time, run the core, make it durable.

One thread owns every Kafka client of the hot path and every write of the partitions' state, so a
round never interleaves with another: (1) poll a batch; (2) decode and validate it (bad input
becomes a dead letter); (3) release what the event-time merge allows and hand it to the core in one
call (one model call per batch); (4) produce the round's outputs at once, so a recommendation never
waits for a checkpoint. The rounds' state changes gather in one pending checkpoint that later rounds
(and the HTTP views) read through. Every `commit_interval` it begins its completion
(streams.live.checkpoint): outputs acknowledged, changelogs, input offsets, local stores, in that
order, a changed key written once however many rounds changed it (Kafka Streams' and quixstreams'
commit interval). The completion moves on between rounds as the broker answers, without holding
them up; the next one begins only after it. Wall-clock timers and catalog changes run between
rounds into the same pending checkpoint. A rebalance happens inside the poll: a revoked
partition's checkpoints are completed before the partition goes, so none is left half done.
"""

from __future__ import annotations

import gc
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from streams.codec import REPLAY_HEADER, encode_value, header_value
from streams.collector import settle
from streams.config import PARTITION_TABLE, STATE_TABLE, Settings
from streams.core.catalog import CatalogItem
from streams.core.events import Position
from streams.core.processor import Incoming, Processor
from streams.core.state import UserState
from streams.errors import BadMessage
from streams.ingest import parse_user_event
from streams.live.catalog import CatalogFollower
from streams.live.checkpoint import Checkpoint, Completion, Transport
from streams.live.delivery import TP, Delivery
from streams.live.local_index import RocksWatchIndex
from streams.live.metrics import WorkerMetrics
from streams.live.outputs import OutputSink, Publish
from streams.live.partitions import OwnedPartitions, PartitionTask, Restore, partition_key
from streams.live.records import InputRecord
from streams.live.sequencer import Entry
from streams.live.tables import decode_state, encode_state
from streams.partitioning import partition_for

log = logging.getLogger(__name__)

LOG_ENDS_EVERY_SECONDS = 0.5  # lag, and the broker's liveness, for the event-time merge
IDLE_WAIT_SECONDS = 0.1  # the longest a poll waits for a first record when nothing is held
HELD_WAIT_SECONDS = 0.005  # ... and when records wait for the other topic's log end


@dataclass(slots=True)
class LoopCounts:
    events: int = 0
    applied: int = 0
    redelivered: int = 0
    processing_failed: int = 0

    def as_dict(self) -> dict[str, int]:
        return {"events": self.events, "applied": self.applied, "redelivered": self.redelivered}


@dataclass(slots=True)
class LoopOptions:
    batch_max: int = 256
    tick_seconds: float | None = 5.0  # wall-clock timers (None: event time only)
    # How often the pending checkpoint is completed: what a crash makes the next owner process again.
    commit_interval: float = 0.1
    commit_keys: int = 20_000  # ... or sooner, once it changed this many keys (bounded memory)


_MISSING = object()


@dataclass
class ProcessingLoop:
    settings: Settings
    processor: Processor
    delivery: Delivery
    transport: Transport
    partitions: OwnedPartitions
    sink: OutputSink
    catalog: CatalogFollower
    watchers: RocksWatchIndex
    metrics: WorkerMetrics
    restore: Restore
    publish: Publish
    options: LoopOptions = field(default_factory=LoopOptions)
    counts: LoopCounts = field(default_factory=LoopCounts)
    restoring: bool = False
    joined: bool = False  # the group gave this worker its first assignment, restored (readiness)
    committed: dict[TP, int] = field(default_factory=dict)
    # Changes since the last checkpoint began: read through by later rounds and the HTTP views, as
    # are those of the checkpoint on its way to the broker and the local stores.
    pending: Checkpoint = field(default_factory=Checkpoint)
    completing: Completion | None = None
    # Partitions whose state the pending rounds changed: encoded once, when the checkpoint begins
    # (a partition state holds its trending items and demand windows: large, changed every round).
    _changed_partitions: set[int] = field(default_factory=set)
    _pending_since: float = 0.0  # monotonic, when the pending checkpoint got its first change
    _changed_items: list[CatalogItem] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _log_ends_at: float = 0.0
    _ticked_at: float = 0.0

    def __post_init__(self) -> None:
        self.catalog.on_update = self._changed_items.append

    # -- lifecycle ----------------------------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="processing-loop", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        try:
            self.catalog.start()
            self.subscribe()
            while not self._stop.is_set():
                self.run_round()
            self.checkpoint(wait=True)
        except Exception:
            # Kafka or the disk failed under a checkpoint: what is not committed is delivered again
            # to whoever owns the partition next, so ending the process loses nothing.
            log.critical("processing loop failed: the worker stops", exc_info=True)
            logging.shutdown()
            os._exit(70)
        finally:
            self.delivery.consumer.close()
            self.catalog.close()

    def subscribe(self) -> None:
        """Join the group: partitions are assigned and revoked inside later polls."""
        self.delivery.subscribe(self._assigned, self._revoked)

    # -- one round ------------------------------------------------------------------------------------------

    def run_round(self) -> None:
        records, handed_at = self.delivery.poll(self.options.batch_max, self._wait())
        checkpoint = self.pending
        for record in records:
            self._admit(checkpoint, record, handed_at)
        self.catalog.poll()
        if self.catalog.ready:  # never recommend from a half-loaded catalog: events wait meanwhile
            ready = self.delivery.release(self.options.batch_max)
            if ready:
                self._process(checkpoint, ready)
        if self.catalog.ready:
            self._tick()
            self._catalog_changes()
        self._send_outputs()
        self._advance_completion()
        now = time.monotonic()
        if self._checkpoint_due(now):
            self.checkpoint()
        if now - self._log_ends_at >= LOG_ENDS_EVERY_SECONDS:
            self._log_ends_at = now
            self.delivery.request_log_ends()

    def _wait(self) -> float:
        """How long the poll may wait for a first record: not past the pending checkpoint's time."""
        # A checkpoint on its way moves on only between polls: keep them short meanwhile.
        waiting = len(self.delivery.sequencer) or self.completing is not None
        wait = HELD_WAIT_SECONDS if waiting else IDLE_WAIT_SECONDS
        if self._pending_since and self.completing is None:
            due_in = self._pending_since + self.options.commit_interval - time.monotonic()
            wait = max(0.0, min(wait, due_in))
        return wait

    def _send_outputs(self) -> None:
        """Outputs go out as soon as they are made; the checkpoint waits for their acknowledgement."""
        pending = self.pending
        if not self._pending_since and (pending or self._offsets_to_commit()):
            self._pending_since = time.monotonic()
        if pending.outputs:
            pending.produce_outputs(self.transport)
            self.sink.published(self.publish)

    def _checkpoint_due(self, now: float) -> bool:
        """The commit interval has passed and the checkpoint before is complete, or the pending
        one changed `commit_keys` keys (then it waits for the one before: bounded memory)."""
        if not self._pending_since:
            return False
        # While the broker is slow to acknowledge the one before, rounds go on (their outputs leave
        # at once) and gather in the pending checkpoint rather than waiting for it.
        if self.completing is None and now - self._pending_since >= self.options.commit_interval:
            return True
        changed = sum(len(rows) for tables in self.pending.writes.values() for rows in tables.values())
        return changed >= self.options.commit_keys

    def _offsets_to_commit(self) -> dict[TP, int]:
        return {tp: o for tp, o in self.delivery.commit_offsets().items() if self.committed.get(tp) != o}

    def checkpoint(self, wait: bool = False) -> None:
        """Begin completing the pending checkpoint, once the one before it is complete. `wait`:
        complete it now, its offset commit answered (before partitions move away, at shutdown)."""
        if self.completing is not None:
            self._finish_completion()
        self._send_outputs()
        checkpoint = self.pending
        for p in sorted(self._changed_partitions):
            task = self.partitions.tasks.get(p)
            if task is not None:
                checkpoint.put(p, PARTITION_TABLE, partition_key(p), encode_value(task.state.to_wire()))
        self._changed_partitions = set()
        offsets = self._offsets_to_commit()
        for (topic, partition), offset in offsets.items():
            checkpoint.processed(topic, partition, offset)
        if checkpoint:
            stores = {p: self.partitions.store(p) for p in checkpoint.writes}
            # Before `pending` is replaced: a read from another thread finds the writes in one or
            # the other, and in the local store once the completion is done.
            self.completing = Completion(
                checkpoint, self.transport, stores, self.settings.changelog_topic, wait_commit=wait
            )
        self.pending = Checkpoint()
        self._pending_since = 0.0
        if wait and self.completing is not None:
            self._finish_completion()
        else:
            self._advance_completion()

    def _advance_completion(self) -> None:
        completion = self.completing
        if completion is not None and completion.advance():
            self._completed(completion)

    def _finish_completion(self) -> None:
        completion = self.completing
        if completion is not None:
            completion.finish()
            self._completed(completion)

    def _completed(self, completion: Completion) -> None:
        if completion.committed:
            self.committed.update(completion.checkpoint.offsets)
        self.completing = None  # after its writes are in the local stores

    def read(self, partition: int, table: str, key: bytes) -> bytes | None:
        """A value as of the last round: its pending change, else the completing checkpoint's,
        else the local store's (None: absent or the partition is not owned here). Safe from
        another thread (see `checkpoint`)."""
        task = self.partitions.tasks.get(partition)
        if task is None:
            return None
        raw = self.pending.writes.get(partition, {}).get(table, {}).get(key, _MISSING)
        if raw is _MISSING and (completion := self.completing) is not None:
            raw = completion.read(partition, table, key, _MISSING)
        return task.store.get(table, key) if raw is _MISSING else raw  # type: ignore[return-value]

    def load_state(self, partition: int, user_id: str) -> UserState | None:
        raw = self.read(partition, STATE_TABLE, user_id.encode())
        return None if raw is None else decode_state(raw)

    def _admit(self, checkpoint: Checkpoint, record: InputRecord, handed_at: int) -> None:
        """Decode and validate; bad input goes to dead-letters at once and never waits in order."""
        logical = self.settings.logical(record.topic) or record.topic
        self.metrics.child(self.metrics.events_in, logical).inc()
        self.counts.events += 1
        try:
            parsed = parse_user_event(
                logical,
                record.key,
                record.value,
                record.headers,
                self.settings.max_message_bytes,
                record.timestamp_ms,
            )
        except BadMessage as exc:
            self.sink.dead_letter(checkpoint, record, exc)
            self.delivery.skip(record)
            return
        replay = header_value(record.headers, REPLAY_HEADER) is not None
        incoming = Incoming(
            parsed, record.partition, Position(logical, record.partition, record.offset), replay
        )
        self.delivery.hold(record, incoming, handed_at)

    def _process(self, checkpoint: Checkpoint, entries: list[Entry]) -> None:
        started = time.perf_counter()
        batch: list[Incoming] = [incoming for _, incoming in entries]
        partition_of = {i.event.user_id: i.partition for i in batch}
        load, watched = self._watch_tracking_loader(lambda u: partition_of.get(u, self.partition_for(u)))
        states = self.partitions.states()
        try:
            result = self.processor.process_batch(batch, load, states, self.partitions.timers)
        except Exception as exc:  # a bug must not stop the partitions: park the batch in dead-letters
            log.exception("batch of %d failed", len(batch))
            self.counts.processing_failed += len(batch)
            error = BadMessage("processing_failed", f"{type(exc).__name__}: {exc}")
            for record, _ in entries:
                assert isinstance(record, InputRecord)
                self.sink.dead_letter(checkpoint, record, error)
            return
        self.metrics.model_latency.observe(time.perf_counter() - started)
        self.metrics.batch_size.observe(len(batch))
        applied = sum(r.applied for r in result.results)
        self.counts.applied += applied
        self.counts.redelivered += len(batch) - applied
        self.metrics.applied.inc(applied)
        self.metrics.redelivered.inc(len(batch) - applied)
        for (record, _), event_result in zip(entries, result.results, strict=True):
            read_at = record.read_at if isinstance(record, InputRecord) else None
            self.sink.add(checkpoint, event_result.outputs, started, read_at)
        owners = {u: partition_of.get(u, self.partition_for(u)) for u in result.states}
        self._store(checkpoint, result.states, owners, watched)
        now = time.time()
        for p in result.partitions:
            task = self.partitions.tasks.get(p)
            if task is not None:
                task.wall_at_watermark = now
                self._changed_partitions.add(p)

    def _store(
        self,
        checkpoint: Checkpoint,
        states: Mapping[str, UserState],
        partitions: Mapping[str, int],
        watched: Mapping[str, set[str]],
    ) -> None:
        """`watched`: the items each user watched in the state the new one was made from, which
        is what the watch index holds of them."""
        for user, state in states.items():
            before = watched.get(user)
            if before is None:  # not loaded through the tracking loader: read what it was made from
                stored = self._load(partitions[user], user)
                before = set(stored.watch) if stored is not None else set()
            if state.watch.keys() != before:
                self.watchers.note(partitions[user], user, before, state.watch.keys())
            checkpoint.put(partitions[user], STATE_TABLE, user.encode(), encode_state(state))

    def _load(self, partition: int, user_id: str) -> UserState | None:
        return self.load_state(partition, user_id)

    def _watch_tracking_loader(
        self, partition_of: Callable[[str], int]
    ) -> tuple[Callable[[str], UserState | None], dict[str, set[str]]]:
        """A state loader for the core, and what each state it loaded watched (for `_store`)."""
        watched: dict[str, set[str]] = {}

        def load(user_id: str) -> UserState | None:
            state = self._load(partition_of(user_id), user_id)
            watched[user_id] = set(state.watch) if state is not None else set()
            return state

        return load, watched

    def partition_for(self, user_id: str) -> int:
        """The partition producers put a user on (Kafka's default murmur2 partitioner)."""
        return partition_for(user_id, self.settings.partitions)

    # -- between rounds -------------------------------------------------------------------------------------

    def _tick(self) -> None:
        """A quiet partition's event time still moves on: fire what the wall clock makes due."""
        every = self.options.tick_seconds
        now_monotonic = time.monotonic()
        if not every or now_monotonic - self._ticked_at < every:
            return
        self._ticked_at = now_monotonic
        for partition, task in list(self.partitions.tasks.items()):
            if task.state.watermark < 0 or not self.delivery.idle(partition):
                continue  # a partition with input to process moves on event time alone
            self._fire_wall_clock_timers(task)

    def _fire_wall_clock_timers(self, task: PartitionTask) -> None:
        partition = task.partition
        now = task.state.watermark + int((time.time() - task.wall_at_watermark) * 1000)
        due = self.partitions.timers.next_due(partition)
        if due is None or due > now - self.processor.config.allowed_lateness_ms:
            return
        load, watched = self._watch_tracking_loader(lambda _: partition)
        outputs, states = self.processor.advance(partition, now, load, self.partitions.timers)
        self.sink.add(self.pending, outputs)
        self._store(self.pending, states, {u: partition for u in states}, watched)

    def _catalog_changes(self) -> None:
        """Price-drop and back-in-stock triggers for this worker's users who saw a changed item."""
        while self._changed_items:
            item = self._changed_items.pop(0)
            users = self.watchers.users(item.item_id, self.partitions.tasks)
            if not users:
                continue
            load, watched = self._watch_tracking_loader(self.partition_for)
            outputs, states = self.processor.on_catalog(item, users, load)
            self.sink.add(self.pending, outputs)
            self._store(self.pending, states, {u: self.partition_for(u) for u in states}, watched)

    # -- rebalance (inside the poll) ------------------------------------------------------------------------

    def _assigned(self, numbers: set[int]) -> None:
        self.restoring = True
        # A restore creates a few objects per user it indexes and keeps none in a cycle: collections
        # triggered by those allocations walked the growing heap again and again (a fifth of the
        # time of a million users' recovery).
        collecting = gc.isenabled()
        gc.disable()
        try:
            for partition in sorted(numbers):
                self.partitions.assign(partition, self.restore)
        finally:
            self.joined = True
            self.restoring = False
            if collecting:
                gc.enable()
        # What lives as long as the worker (the model, the catalog, the host's objects) leaves the
        # collector's reach: a full collection otherwise walks it all, a pause of tens of ms that
        # every event in flight waits out. Collections are rare from then on (streams.collector).
        settle()

    def _revoked(self, numbers: set[int]) -> None:
        """Before the partitions go: what was processed of them becomes durable and committed."""
        self.checkpoint(wait=True)
        for partition in numbers:
            self.partitions.revoke(partition)
        self.committed = {tp: o for tp, o in self.committed.items() if tp[1] not in numbers}

    # -- read by the HTTP views (another thread) ---------------------------------------------------------

    def lag(self) -> dict[TP, int]:
        return self.delivery.lag(self.committed)

    def processed(self) -> int:
        return self.counts.applied + self.counts.redelivered + self.sink.counts.dead_letters

    def health_counts(self) -> dict[str, Any]:
        return {**self.counts.as_dict(), **self.sink.counts.as_dict()}
