"""What the consumer last learnt about an input topic-partition: its highwater, and when.

The sequencer asks "is this topic-partition caught up?" before it lets the other topic's events go
ahead, and the answer is only as good as the fetch response it rests on. Faust exposes the highwater
but not when it was fetched, so this reads aiokafka's per-partition fetch state directly. Kept in one
place: it is the only code here that knows aiokafka's internals.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from faust.types import TP


@dataclass(frozen=True, slots=True)
class FetchState:
    highwater: int | None  # log end offset as of the last fetch response
    polled_at: int | None  # wall-clock ms of that fetch response
    position: int | None = None  # next offset the consumer hands out (all before it left aiokafka)
    paused: bool = False

    def caught_up(self, last_seen: int) -> bool:
        """Nothing in the partition beyond offset `last_seen` (-1: nothing seen)."""
        return self.highwater is not None and last_seen + 1 >= self.highwater


class FetchView:
    def __init__(self, faust_consumer: Any) -> None:
        self._faust_consumer = faust_consumer

    def _aiokafka(self) -> Any:
        return self._faust_consumer._thread._ensure_consumer()

    def state(self, tp: TP) -> FetchState | None:
        """None when the partition is not assigned here (mid-rebalance)."""
        try:
            consumer = self._aiokafka()
            partition = consumer._subscription.subscription.assignment.state_value(tp)
        except Exception:
            return None
        if partition is None:
            return None
        position = partition.position if partition.has_valid_position else None
        return FetchState(partition.highwater, partition.timestamp, position, bool(partition.paused))

    def last_answer(self) -> int | None:
        """Wall-clock ms of the newest fetch response for any assigned partition: how recently the
        broker answered at all (one partition's own can be old only because it is not fetched)."""
        try:
            assignment = self._aiokafka()._subscription.subscription.assignment
            stamps = [assignment.state_value(tp).timestamp for tp in assignment.tps]
        except Exception:
            return None
        answered = [stamp for stamp in stamps if stamp is not None]
        return max(answered) if answered else None

    def polled_at(self, tp: TP) -> int | None:
        state = self.state(tp)
        return None if state is None else state.polled_at
