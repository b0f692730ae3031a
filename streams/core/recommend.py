"""The core's view of the model: a small protocol, so tests use a fake and the ONNX runtime stays
replaceable."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from operator import attrgetter
from typing import Any, NamedTuple, Protocol

# (item_id or None, kind, ts), oldest first: exactly what UserState.recent holds.
HistoryEntry = tuple[str | None, str, int]


_ENTRY = attrgetter("item_id", "kind", "ts")


def recent_history(recent: Sequence[Any]) -> tuple[HistoryEntry, ...]:
    """`UserState.recent` as the model reads it (one attrgetter per event: it runs per event)."""
    return tuple(map(_ENTRY, recent))


class BatchHistories:
    """`recent_history` for the events of one batch. A shopper's next event in the batch usually
    lands at the end of their recent events: its history is then the one before (the oldest dropped
    past the window) plus the new event, sharing the earlier entries instead of building them again."""

    def __init__(self) -> None:
        self._last: dict[str, tuple[Sequence[Any], tuple[HistoryEntry, ...]]] = {}

    def of(self, user: str, before: Sequence[Any] | None, recent: Sequence[Any]) -> tuple[HistoryEntry, ...]:
        """The history of `recent`, the user's events right after `before` (the user's state's
        `recent` before the event; states share their RecentEvent objects, so `is` tells them apart)."""
        last = self._last.get(user)
        if (
            last is not None
            and before is not None
            and last[0] is before
            and recent
            and (not before or recent[-1] is not before[-1])  # the new event is the newest
        ):
            kept = last[1]
            history = (*kept[len(kept) - (len(recent) - 1) :], _ENTRY(recent[-1]))
        else:
            history = recent_history(recent)
        self._last[user] = (recent, history)
        return history


# A model's carried state: (artifact version, bytes). What a prediction returns can be handed back.
Carried = tuple[str, bytes]


class RecRequest(NamedTuple):  # one per event: cheaper to build than a frozen dataclass
    history: tuple[HistoryEntry, ...]
    exclude: frozenset[str]
    k: int
    # A step-mode model's state after history[:-1], when the shopper's state holds it ...
    carried: Carried | None = None
    # ... or the index of an earlier request of the same batch whose history is history[:-1].
    after: int | None = None


@dataclass(frozen=True, slots=True)
class Prediction:
    items: list[tuple[str, float]]  # best first
    purchase_intent: float
    state: Carried | None = None  # a step-mode model's state after the request's history


class Recommender(Protocol):
    @property
    def version(self) -> str: ...

    def knows(self, item_id: str) -> bool:
        """True if the model has this item in its vocabulary (else the shopper is cold for it)."""
        ...

    def recommend_batch(self, requests: Sequence[RecRequest]) -> list[Prediction]:
        """One prediction per request, in order; one model call for the whole batch."""
        ...


class TrendingOnly:
    """No model: every shopper is served from in-stream trending items (still one rec per event)."""

    version = "trending-only"

    def knows(self, item_id: str) -> bool:
        return False

    def recommend_batch(self, requests: Sequence[RecRequest]) -> list[Prediction]:
        return [Prediction([], 0.0) for _ in requests]
