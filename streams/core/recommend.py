"""The core's view of the model: a small protocol, so tests use a fake and the ONNX runtime stays
replaceable."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from operator import attrgetter
from typing import Any, Protocol

# (item_id or None, kind, ts), oldest first: exactly what UserState.recent holds.
HistoryEntry = tuple[str | None, str, int]


_ENTRY = attrgetter("item_id", "kind", "ts")


def recent_history(recent: Sequence[Any]) -> tuple[HistoryEntry, ...]:
    """`UserState.recent` as the model reads it (one attrgetter per event: it runs per event)."""
    return tuple(map(_ENTRY, recent))


# A model's carried state: (artifact version, bytes). What a prediction returns can be handed back.
Carried = tuple[str, bytes]


@dataclass(frozen=True, slots=True)
class RecRequest:
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
