"""Where faust-streaming 0.15.3's consumer lets its commit pass events nobody processed, and how the
worker avoids it. A SIGKILL after such a commit loses those events for good (the 100k fault test
found all three: events missing from the changelog after restarts, with no dead letter).

1. Pausing drops fetched records. `Consumer.pause_partitions` removes the partitions from the set of
   active partitions *in place*, and `getmany` is at that moment iterating a fetched batch checking
   membership in that same set object: the rest of the batch for a partition paused mid-iteration is
   dropped, although aiokafka has already moved its position past it. `pause` and `resume` here give
   the consumer a new set instead, so a running iteration keeps its snapshot.
2. False gaps. When the next record of a partition is more than one offset past the last one read,
   Faust records the offsets between (and the new one) as a gap it counts as acknowledged, for
   transaction markers. But its read position is reset to the committed offset after a rebalance's
   seek even when records past it were delivered meanwhile, so delivered records that are still
   waiting to be processed become a "gap". `ignore_offset_gaps` turns that off: input topics here are
   written without transactions, so a partition's offsets carry no markers.
3. Dropped re-deliveries. Faust drops a fetched record whose offset is below the last one it read.
   After the worker seeks a partition back to repair a hole (streams/live/contiguity.py), records
   of the fetch already under way advance that mark again, and the records asked for are dropped:
   the partition would wait for ever. `deliver_every_offset` turns that check off; the worker's
   contiguity check orders records and takes re-deliveries as such.
4. A commit past an unacknowledged offset. Faust commits the first consecutive run of acknowledged
   offsets unless it starts more than one past the committed offset: off by one, so a run starting
   just after an offset that was dropped (streams/live/contiguity.py) or is still being processed
   is committed. `guard_commits` declines that run until the offset is acknowledged.
5. A seek from the wrong thread. Faust runs aiokafka in a thread of its own, but `Consumer.seek`
   calls aiokafka's `seek` directly from the caller's thread, which deletes the partition's fetched
   records while the fetcher in the other thread may be reading them: the fetcher crashed with a
   KeyError and took the worker down (seen in a soak, on a seek of the contiguity repair).
   `seek_on_the_consumer_thread` makes every seek a call on the consumer's own thread.

These touch Faust's private attributes; tests/live/test_consumer_guards.py pins what they rely on.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from faust.types import TP


def pause(consumer: Any, tps: Iterable[TP]) -> None:
    tps = set(tps)
    active = consumer._get_active_partitions()
    consumer._paused_partitions.update(tps)
    consumer._active_partitions = active - tps


def resume(consumer: Any, tps: Iterable[TP]) -> None:
    tps = set(tps)
    consumer._paused_partitions.difference_update(tps)
    consumer._active_partitions = consumer._get_active_partitions() | tps


def guard_commits(consumer: Any) -> None:
    """Guards 2 to 5 above, once per consumer (before its fetcher starts)."""
    if getattr(consumer, "_streams_guarded", False):
        return
    ignore_offset_gaps(consumer)
    deliver_every_offset(consumer)
    commit_only_from_the_committed_offset(consumer)
    seek_on_the_consumer_thread(consumer)
    consumer._streams_guarded = True


def seek_on_the_consumer_thread(consumer: Any) -> None:
    thread = consumer._thread

    async def seek(partition: TP, offset: int) -> None:
        await thread.call_thread(thread.seek, partition, offset)

    consumer._seek = seek


class _NoReadMark(dict[Any, Any]):
    """Keeps what Faust writes, answers "nothing read yet" to every lookup."""

    def __getitem__(self, key: Any) -> None:
        return None

    def get(self, key: Any, default: Any = None) -> Any:
        return default


def deliver_every_offset(consumer: Any) -> None:
    consumer._read_offset = _NoReadMark()


def ignore_offset_gaps(consumer: Any) -> None:
    async def no_gap(tp: TP, offset_from: int, offset_to: int) -> None:
        return None

    consumer._add_gap = no_gap


def commit_only_from_the_committed_offset(consumer: Any) -> None:
    new_offset = consumer._new_offset

    def guarded(tp: TP) -> int | None:
        acked, committed = consumer._acked[tp], consumer._committed_offset[tp]
        if acked and committed is not None and min(acked) > committed:
            return None  # the committed offset itself is not acknowledged yet
        result: int | None = new_offset(tp)
        return result

    consumer._new_offset = guarded


def acknowledge_missing(consumer: Any, tp: TP, offsets: range) -> None:
    """Offsets that hold no record (a hole accepted as real): the commit may pass them."""
    index = consumer._acked_index[tp]
    fresh = [o for o in offsets if o not in index]
    index.update(fresh)
    consumer._acked[tp].extend(fresh)


def withhold(consumer: Any, message: Any) -> None:
    """A record dropped to be fetched again: it must never count as acknowledged. Faust acks every
    event of a batch once the agent is done with it; an extra reference keeps this one from that,
    and Faust's set of outstanding records (which a rebalance waits to empty) forgets it."""
    message.incref()
    consumer._unacked_messages.discard(message)
