"""Every input topic-partition's records reach the worker in offset order, without holes.

Faust can drop records it has already taken from the fetcher: when flow control resumes after a
rebalance's recovery it clears the stream buffers, which may by then hold records fetched during
the recovery's final seek. Nothing fetches those again, and the first record the worker sees after
them is further on. A partition's records must not be applied out of order either: a user's offset
watermark would then make a late-fetched earlier event look like a duplicate. So a hole is repaired
where it shows: the worker drops the record past the hole, and what follows it, and seeks the
partition back to the first missing offset.

Input topics are written without transactions, so their offsets carry no markers and a hole is a
drop, not a gap in the log. Should records really be missing (a topic written transactionally, or
truncated), the partition would wait for ever: after `max_seeks` seeks that bring nothing at the
missing offset the hole is accepted, and reported.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable
from dataclasses import dataclass


class Admission(enum.Enum):
    ACCEPT = "accept"  # the next record, or one re-delivered from before it
    DROP = "drop"  # past a hole being repaired: it comes again after the seek
    SEEK = "seek"  # past a hole just found: drop it and seek back to `missing_from`
    ACCEPT_HOLE = "accept_hole"  # the hole has no records after all (`holes_accepted[-1]`)


@dataclass(slots=True)
class _Repair:
    since: float  # monotonic, of the last seek
    seeks: int


@dataclass(frozen=True, slots=True)
class Hole:
    topic: str
    partition: int
    missing_from: int
    next_seen: int


class OffsetContiguity:
    def __init__(self, reseek_after: float = 10.0, max_seeks: int = 3) -> None:
        self.reseek_after = reseek_after
        self.max_seeks = max_seeks
        self._next: dict[tuple[str, int], int] = {}
        self._repairs: dict[tuple[str, int], _Repair] = {}
        self.holes_repaired = 0
        self.holes_accepted: list[Hole] = []

    def admit(self, topic: str, partition: int, offset: int, resume_at: Callable[[], int]) -> Admission:
        """`resume_at()`: the first offset not processed yet, asked once per assignment."""
        key = (topic, partition)
        expected = self._next.get(key)
        if expected is None:
            expected = self._next[key] = resume_at()
        if offset < expected:
            return Admission.ACCEPT  # re-delivered: already processed, or at least fetched once
        if offset == expected:
            self._next[key] = offset + 1
            if self._repairs.pop(key, None) is not None:
                self.holes_repaired += 1
            return Admission.ACCEPT
        repair = self._repairs.get(key)
        now = time.monotonic()
        if repair is None:
            self._repairs[key] = _Repair(now, 1)
            return Admission.SEEK
        if now - repair.since < self.reseek_after:
            return Admission.DROP
        if repair.seeks < self.max_seeks:
            repair.since, repair.seeks = now, repair.seeks + 1
            return Admission.SEEK
        del self._repairs[key]
        self.holes_accepted.append(Hole(topic, partition, expected, offset))
        self._next[key] = offset + 1
        return Admission.ACCEPT_HOLE

    def overdue(self) -> list[tuple[str, int, int]]:
        """Repairs whose seek brought nothing for `reseek_after` seconds (no record arrived to
        notice it): (topic, partition, missing offset) to seek again, now counted as sought."""
        now = time.monotonic()
        due = []
        for key, repair in self._repairs.items():
            if now - repair.since >= self.reseek_after:
                repair.since, repair.seeks = now, repair.seeks + 1
                due.append((key[0], key[1], self._next[key]))
        return due

    def expected(self, topic: str, partition: int) -> int | None:
        """The next offset due here (None: nothing arrived since the assignment)."""
        return self._next.get((topic, partition))

    def repair(self, topic: str, partition: int, offset: int) -> None:
        """Records from `offset` on were lost without a later one showing it (the caller seeks):
        what arrives past it is dropped until `offset` comes again."""
        key = (topic, partition)
        self._next[key] = offset
        self._repairs[key] = _Repair(time.monotonic(), 1)

    def rewind(self, topic: str, partition: int, offset: int) -> None:
        """A record from `offset` on was dropped here (given back): it must come again."""
        key = (topic, partition)
        if key in self._next:
            self._next[key] = min(self._next[key], offset)

    def missing_from(self, topic: str, partition: int) -> int:
        return self._next[(topic, partition)]

    def repairing(self) -> int:
        return len(self._repairs)

    def forget_partition(self, partition: int) -> None:
        for key in [k for k in self._next if k[1] == partition]:
            self._next.pop(key, None)
            self._repairs.pop(key, None)


class InFlightWatch:
    """Records the consumer handed out that never reach the agent, with no later record to show
    the hole (none was written after them). The consumer's position then stands past the next
    offset expected here; once both have stood still for `limit` seconds, the records from the
    expected offset on are taken as lost and fetched again. A busy worker moves at least one of
    the two within the limit, so it is never mistaken for a loss."""

    def __init__(self, limit: float = 30.0) -> None:
        self.limit = limit
        self._marks: dict[tuple[str, int], tuple[tuple[int, int], float]] = {}  # (position, expected), since

    def lost(self, topic: str, partition: int, position: int, expected: int) -> bool:
        """True once `position` > `expected` has held unchanged for `limit` seconds (then the
        watch starts again for this partition)."""
        key = (topic, partition)
        if position <= expected:
            self._marks.pop(key, None)
            return False
        now = time.monotonic()
        mark = (position, expected)
        seen, since = self._marks.get(key, (None, now))
        if seen != mark:
            self._marks[key] = (mark, now)
            return False
        if now - since > self.limit:
            del self._marks[key]
            return True
        return False

    def forget(self, topic: str, partition: int) -> None:
        self._marks.pop((topic, partition), None)

    def reset(self) -> None:
        """Everything is delayed (a rebalance, a silent broker): every limit starts again."""
        self._marks.clear()
