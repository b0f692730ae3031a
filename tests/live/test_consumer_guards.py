"""What the worker changes in Faust's consumer (streams/live/consumer_guards.py), on a real, unstarted
Faust consumer: the private attributes the guards rely on are pinned here, so a faust-streaming
upgrade that moves them fails this test instead of losing events."""

from __future__ import annotations

import asyncio
import inspect

import faust
from faust.transport.consumer import Consumer
from faust.types import TP

from streams.live.consumer_guards import (
    acknowledge_missing,
    commit_only_from_the_committed_offset,
    deliver_every_offset,
    ignore_offset_gaps,
    pause,
    resume,
    seek_on_the_consumer_thread,
    withhold,
)

CLICKS, ORDERS = TP("clicks", 0), TP("orders", 0)


def consumer() -> Consumer:
    app = faust.App("test-consumer-guards", broker="kafka://127.0.0.1:1")
    c = app.consumer
    c._active_partitions = {CLICKS, ORDERS}
    return c


def test_fausts_own_pause_empties_the_set_a_running_fetch_iterates() -> None:
    # Why `pause` exists: getmany checks each fetched record against the set it started with.
    c = consumer()
    iterating = c._get_active_partitions()
    c.pause_partitions([CLICKS])
    assert CLICKS not in iterating  # the rest of a fetched clicks batch would be dropped


def test_pause_leaves_a_running_fetch_its_snapshot_and_stops_the_next_one() -> None:
    c = consumer()
    iterating = c._get_active_partitions()
    pause(c, [CLICKS])
    assert iterating == {CLICKS, ORDERS}
    assert c._get_active_partitions() == {ORDERS} and c._paused_partitions == {CLICKS}
    resume(c, [CLICKS])
    assert c._get_active_partitions() == {CLICKS, ORDERS} and not c._paused_partitions
    assert iterating == {CLICKS, ORDERS}


def test_offset_gaps_are_not_counted_as_acknowledged() -> None:
    c = consumer()
    asyncio.run(c._add_gap(CLICKS, 5, 10))
    assert c._gap[CLICKS]  # Faust's own: offsets 5..10 would count as processed
    c = consumer()
    ignore_offset_gaps(c)
    asyncio.run(c._add_gap(CLICKS, 5, 10))
    assert not c._gap[CLICKS]
    # The fetch loop looks the method up on the instance each time, so the override takes effect.
    assert "self._add_gap(" in inspect.getsource(Consumer._drain_messages)


def test_a_run_of_acks_just_past_the_committed_offset_is_not_committed() -> None:
    c = consumer()
    c._committed_offset[CLICKS] = 10
    c._acked[CLICKS] = [11, 12]
    c._acked_index[CLICKS] = {11, 12}
    assert c._new_offset(CLICKS) == 13  # Faust's own: offset 10 was never acknowledged
    c = consumer()
    commit_only_from_the_committed_offset(c)
    c._committed_offset[CLICKS] = 10
    c._acked[CLICKS] = [11, 12]
    c._acked_index[CLICKS] = {11, 12}
    assert c._new_offset(CLICKS) is None
    c._acked[CLICKS].append(10)
    c._acked_index[CLICKS].add(10)
    assert c._new_offset(CLICKS) == 13


def test_missing_offsets_accepted_as_holes_let_the_commit_pass() -> None:
    c = consumer()
    commit_only_from_the_committed_offset(c)
    c._committed_offset[CLICKS] = 10
    c._acked[CLICKS] = [14]
    c._acked_index[CLICKS] = {14}
    acknowledge_missing(c, CLICKS, range(10, 14))
    assert c._new_offset(CLICKS) == 15


def test_a_withheld_message_is_never_acknowledged_by_the_batch_end() -> None:
    c = consumer()

    class Message:
        refcount = 1

        def incref(self) -> None:
            self.refcount += 1

    message = Message()
    c._unacked_messages.add(message)
    withhold(c, message)
    assert message.refcount == 2 and message not in c._unacked_messages


def test_records_below_the_last_read_offset_are_delivered_after_a_seek_back() -> None:
    c = consumer()
    deliver_every_offset(c)
    c._read_offset[CLICKS] = 120  # what the rest of a fetch under way sets after the seek to 97
    # The fetch loop compares each record with this mark and drops those below it.
    assert c._read_offset[CLICKS] is None
    assert "get_read_offset = self._read_offset.__getitem__" in inspect.getsource(Consumer._drain_messages)


def test_a_seek_runs_on_the_consumer_thread() -> None:
    c = consumer()
    # Why: Faust's own seek calls aiokafka from the caller's thread, racing its fetcher.
    assert "self._thread.seek(" in inspect.getsource(type(c)._seek)
    thread = c._thread
    calls = []

    async def call_thread(fun: object, *args: object) -> None:
        calls.append((fun, args))

    thread.call_thread = call_thread
    seek_on_the_consumer_thread(c)
    asyncio.run(c.seek(CLICKS, 41))
    assert calls == [(thread.seek, (CLICKS, 41))]
