"""Input partitions' log ends, asked of the broker without blocking the processing loop.

The event-time merge (streams.live.sequencer) may release a partition's held clicks only once its
orders are known to be caught up, judged on a log end at least as recent as the fetch that brought
the waiting click. A log end from a ListOffsets request issued after that moment is such a
judgement: one request covers every partition that waits, and its answer is kept with the
wall-clock time it was asked at.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent import futures
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, Protocol

from confluent_kafka import KafkaException, TopicPartition
from confluent_kafka.admin import OffsetSpec

log = logging.getLogger(__name__)

TP = tuple[str, int]
# A request unanswered this long fails and is asked again: a broker back from a restart is noticed.
REQUEST_TIMEOUT_SECONDS = 5.0


class OffsetsAdmin(Protocol):  # confluent_kafka.admin.AdminClient's part used here
    def list_offsets(self, topic_partition_offsets: Mapping[TopicPartition, Any], **kwargs: Any) -> Any: ...


@dataclass(frozen=True, slots=True)
class LogEnd:
    offset: int  # the next offset the partition will be written at
    asked_at_ms: int  # wall clock when the request was issued


class HighWatermarks:
    def __init__(self, admin: OffsetsAdmin, clock_ms: Callable[[], int] | None = None) -> None:
        self._admin = admin
        self._clock_ms = clock_ms or (lambda: int(time.time() * 1000))
        self._known: dict[TP, LogEnd] = {}
        self._pending: dict[TP, tuple[int, Future[Any]]] = {}  # tp -> (asked at, answer)
        self._wanted: set[TP] = set()  # judged unknown by `caught_up` since the last `request_wanted`
        self.failures = 0
        self.answered_at_ms: int | None = None  # when the last answer's request was issued

    def request(self, tps: Iterable[TP]) -> None:
        """Ask for the log ends of `tps` that have no request on its way (one request for all)."""
        wanted = [tp for tp in tps if tp not in self._pending]
        if not wanted:
            return
        asked_at = self._clock_ms()
        futures = self._admin.list_offsets(
            {TopicPartition(topic, partition): OffsetSpec.latest() for topic, partition in wanted},
            request_timeout=REQUEST_TIMEOUT_SECONDS,
        )
        for tp, future in futures.items():
            self._pending[(tp.topic, tp.partition)] = (asked_at, future)

    def collect(self) -> None:
        """Take in the answers that have come (never waits)."""
        for tp, (asked_at, future) in list(self._pending.items()):
            if not future.done():
                continue
            del self._pending[tp]
            try:
                offset = future.result().offset
            except KafkaException as exc:  # a broker away: asked again on the next wait
                self.failures += 1
                log.debug("log end of %s[%d] not known: %s", *tp, exc)
                continue
            if self.answered_at_ms is None or asked_at > self.answered_at_ms:
                self.answered_at_ms = asked_at
            known = self._known.get(tp)
            if known is None or known.asked_at_ms <= asked_at:
                self._known[tp] = LogEnd(offset, asked_at)

    def wait(self, timeout: float) -> bool:
        """Wait up to `timeout` for an answer to a request on its way; False (at once) if none is."""
        if not self._pending:
            return False
        futures.wait([f for _, f in self._pending.values()], timeout, futures.FIRST_COMPLETED)
        return True

    def answered_within(self, ms: int) -> bool:
        """The broker answered a request issued less than `ms` ago."""
        return self.answered_at_ms is not None and self._clock_ms() - self.answered_at_ms < ms

    def log_end(self, tp: TP) -> LogEnd | None:
        return self._known.get(tp)

    def caught_up(self, tp: TP, last_offset: int, since_ms: int) -> bool:
        """True if a log end asked at or after `since_ms` has nothing past `last_offset`; otherwise
        `tp` is noted for the next `request_wanted`, so a later call can tell."""
        known = self._known.get(tp)
        if known is not None and known.asked_at_ms >= since_ms:
            return known.offset <= last_offset + 1
        self._wanted.add(tp)
        return False

    def request_wanted(self) -> None:
        """Ask, in one request, for the log ends `caught_up` could not judge: a merge pass over
        every partition makes one request, not one per waiting partition."""
        if self._wanted:
            wanted, self._wanted = self._wanted, set()
            self.request(sorted(wanted))

    def forget(self, partitions: Iterable[TP]) -> None:
        for tp in partitions:
            self._known.pop(tp, None)
            self._pending.pop(tp, None)
            self._wanted.discard(tp)
