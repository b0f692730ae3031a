"""Holes in a partition's offsets are repaired by seeking back (streams/live/contiguity.py)."""

from __future__ import annotations

from streams.live.contiguity import Admission, InFlightWatch, OffsetContiguity
from tests.live.conftest import Clock


def test_records_from_the_resume_point_on_and_re_deliveries_before_it_are_accepted(clock: Clock) -> None:
    seen = OffsetContiguity()
    asked = []

    def resume_at() -> int:
        asked.append(1)
        return 10

    # The committed offset may lie before what the partition processed: those come again.
    assert [seen.admit("clicks", 0, o, resume_at) for o in (8, 9, 10, 11)] == [Admission.ACCEPT] * 4
    assert len(asked) == 1  # once per assignment


def test_a_hole_drops_what_follows_until_the_seek_brings_the_missing_offset(clock: Clock) -> None:
    seen = OffsetContiguity()
    assert seen.admit("clicks", 0, 5, lambda: 5) is Admission.ACCEPT
    assert seen.admit("clicks", 0, 9, lambda: 5) is Admission.SEEK  # 6..8 were dropped upstream
    assert seen.missing_from("clicks", 0) == 6
    assert seen.admit("clicks", 0, 10, lambda: 5) is Admission.DROP  # the rest of the old fetch
    assert seen.admit("orders", 0, 0, lambda: 0) is Admission.ACCEPT  # other partitions go on
    assert [seen.admit("clicks", 0, o, lambda: 5) for o in (6, 7, 8, 9)] == [Admission.ACCEPT] * 4
    assert seen.holes_repaired == 1 and seen.repairing() == 0


def test_a_hole_that_never_fills_is_sought_again_then_accepted(clock: Clock) -> None:
    seen = OffsetContiguity(reseek_after=10, max_seeks=2)
    seen.admit("clicks", 1, 0, lambda: 0)
    assert seen.admit("clicks", 1, 4, lambda: 0) is Admission.SEEK
    clock.now += 11
    assert seen.admit("clicks", 1, 4, lambda: 0) is Admission.SEEK
    clock.now += 5
    assert seen.admit("clicks", 1, 4, lambda: 0) is Admission.DROP
    clock.now += 6
    assert seen.admit("clicks", 1, 4, lambda: 0) is Admission.ACCEPT_HOLE
    hole = seen.holes_accepted[-1]
    assert (hole.missing_from, hole.next_seen) == (1, 4)
    assert seen.admit("clicks", 1, 5, lambda: 0) is Admission.ACCEPT


def test_a_revoked_partition_asks_for_its_resume_point_again(clock: Clock) -> None:
    seen = OffsetContiguity()
    seen.admit("clicks", 2, 0, lambda: 0)
    seen.forget_partition(2)
    assert seen.admit("clicks", 2, 50, lambda: 50) is Admission.ACCEPT


def test_a_given_back_record_rewinds_its_partition_so_its_absence_is_a_hole(clock: Clock) -> None:
    seen = OffsetContiguity()
    for offset in (97, 98, 99):
        assert seen.admit("orders", 2, offset, lambda: 97) is Admission.ACCEPT
    seen.rewind("orders", 2, 98)  # 98 and 99 were dropped un-acked
    assert seen.admit("orders", 2, 100, lambda: 97) is Admission.SEEK
    assert seen.missing_from("orders", 2) == 98
    assert [seen.admit("orders", 2, o, lambda: 97) for o in (98, 99, 100)] == [Admission.ACCEPT] * 3


def test_a_repair_whose_seek_brings_nothing_is_sought_again_from_the_timer(clock: Clock) -> None:
    seen = OffsetContiguity(reseek_after=10)
    seen.admit("clicks", 3, 0, lambda: 0)
    assert seen.admit("clicks", 3, 2, lambda: 0) is Admission.SEEK
    assert seen.overdue() == []
    clock.now += 10
    assert seen.overdue() == [("clicks", 3, 1)]
    assert seen.overdue() == []  # counted: the next one is due 10 s later


def test_records_lost_at_the_end_of_a_partition_are_repaired_when_the_worker_notices(clock: Clock) -> None:
    # Nothing was written after them, so no later record shows the hole: the worker sees the
    # consumer's position stand past what arrived, and starts the repair itself.
    seen = OffsetContiguity()
    assert seen.expected("orders", 1) is None
    seen.admit("orders", 1, 0, lambda: 0)
    seen.repair("orders", 1, 1)
    assert seen.admit("orders", 1, 2, lambda: 0) is Admission.DROP  # the old fetch's rest
    assert seen.admit("orders", 1, 1, lambda: 0) is Admission.ACCEPT
    assert seen.expected("orders", 1) == 2 and seen.holes_repaired == 1


def test_records_handed_out_that_never_arrive_are_lost_after_the_limit(clock: Clock) -> None:
    watch = InFlightWatch(limit=30.0)
    # The consumer handed out up to offset 19; the agent expects 12 next: 12..19 are on their way.
    assert not watch.lost("clicks", 0, 20, 12)
    clock.now += 29.0
    assert not watch.lost("clicks", 0, 20, 12)
    clock.now += 2.0
    assert watch.lost("clicks", 0, 20, 12)  # still nothing after 31 s: fetched again
    assert not watch.lost("clicks", 0, 20, 12)  # and the watch starts over


def test_a_busy_worker_or_a_caught_up_partition_is_never_lost(clock: Clock) -> None:
    watch = InFlightWatch(limit=30.0)
    for step in range(10):  # slow, but the agent moves on: never lost
        assert not watch.lost("clicks", 0, 100, 12 + step)
        clock.now += 20.0
    for step in range(10):  # the consumer fetched more meanwhile: a new mark each time
        assert not watch.lost("clicks", 1, 100 + step, 12)
        clock.now += 20.0
    assert not watch.lost("clicks", 2, 12, 12)  # nothing handed out beyond what arrived
    clock.now += 100.0
    assert not watch.lost("clicks", 2, 12, 12)


def test_a_reset_or_a_revoked_partition_starts_the_limit_again(clock: Clock) -> None:
    watch = InFlightWatch(limit=30.0)
    assert not watch.lost("clicks", 0, 20, 12) and not watch.lost("orders", 0, 5, 3)
    clock.now += 25.0
    watch.reset()  # a rebalance or a silent broker: everything was delayed
    clock.now += 10.0
    assert not watch.lost("clicks", 0, 20, 12)
    clock.now += 25.0
    watch.forget("clicks", 0)
    clock.now += 10.0
    assert not watch.lost("clicks", 0, 20, 12)
    clock.now += 31.0
    assert watch.lost("clicks", 0, 20, 12)
