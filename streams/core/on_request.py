"""A shopper's recommendations computed when asked, with each item's reason.

The stream's own parts do the work: the same `Recommender` the processor calls (one request, the
shopper's recent events read whole), the same exclusions and business rules (`rules.finalize`), the
same trending fallback for a shopper the model cannot place. Pure and deterministic: the same state,
partition trending, catalog and query give the same answer, id included.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol

from streams.core.catalog import Catalog
from streams.core.config import RulesConfig
from streams.core.ids import stable_id
from streams.core.listing import Candidate, ListQuery, select
from streams.core.recommend import Recommender, RecRequest, recent_history
from streams.core.rules import exclusions, finalize
from streams.core.state import UserState
from streams.core.trending import Trending

CANDIDATES = 300  # asked of the model before filters: a category filter still finds n items
EXPLAINING_ITEMS = 10  # the shopper's newest distinct items an item may be explained by
EXPLAINS = 0.4  # cosine similarity from which "because you viewed X" explains a model item
EXPLAINED_KINDS = ("view", "add_to_cart")


class ItemSpace(Protocol):
    """Item-to-item similarity (the model's item embeddings)."""

    def __contains__(self, item_id: object) -> bool: ...

    def neighbours(self, item_id: str, k: int, exclude: Sequence[str] = ()) -> list[tuple[str, float]]:
        """The k most similar items, best first, ties by id; never the item itself or `exclude`."""
        ...

    def similarities(self, item_id: str, others: Sequence[str]) -> list[float]:
        """Similarity of `item_id` to each of `others` (0.0 for an item the space does not hold)."""
        ...


@dataclass(frozen=True, slots=True)
class RequestedList:
    rec_id: str
    model_version: str
    purchase_intent: float
    fallback: str | None  # "trending" when the model knows none of the shopper's items
    items: list[dict[str, Any]]

    def document(self, user_id: str, query: ListQuery, through: str | None) -> dict[str, Any]:
        return {
            "rec_id": self.rec_id,
            "user_id": user_id,
            "placement": query.placement,
            "model_version": self.model_version,
            "purchase_intent": self.purchase_intent,
            "fallback": self.fallback,
            "through_event_id": through,
            "items": self.items,
        }


def recommend_now(
    state: UserState,
    recommender: Recommender,
    trending: Trending,
    catalog: Catalog,
    config: RulesConfig,
    query: ListQuery,
    space: ItemSpace | None = None,
) -> RequestedList:
    excluded = exclusions(state, config) | query.exclude
    history = recent_history(state.recent)
    pool = CANDIDATES + len(query.exclude)
    wide = replace(config, top_n=pool)  # the rules cut nothing: the query's n cuts, after its filters
    seen = {e.item_id for e in state.recent if e.item_id is not None}
    if not any(item is not None and recommender.knows(item) for item, _, _ in history):
        ranked = finalize(trending.top(pool, excluded), state, catalog, wide, "trending")
        candidates = [Candidate(i, s, "trending") for i, s in ranked.items]
        intent, fallback = 0.0, "trending"
    else:
        prediction = recommender.recommend_batch([RecRequest(history, excluded, pool)])[0]
        ranked = finalize(prediction.items, state, catalog, wide, None)
        boosted = set(ranked.provenance.get("boosted", ()))
        explain = _Explainer(state, space)
        candidates = [
            _model_candidate(item, score, seen, boosted, catalog, explain) for item, score in ranked.items
        ]
        intent, fallback = round(float(prediction.purchase_intent), 6), None
    last = state.recent[-1].event_id if state.recent else None
    version = recommender.version
    rec_id = stable_id("q", state.user_id, last, version, query.canonical())
    return RequestedList(rec_id, version, intent, fallback, select(candidates, catalog, query))


def _model_candidate(
    item: str, score: float, seen: set[str], boosted: set[str], catalog: Catalog, explain: _Explainer
) -> Candidate:
    if item in seen:
        return Candidate(item, score, "repeat")
    if item in boosted:
        return Candidate(item, score, "boosted_category", {"category": catalog[item].category})
    because = explain(item)
    if because is not None:
        return Candidate(item, score, "because_you_viewed", {"because": because})
    return Candidate(item, score, "model")


class _Explainer:
    """The shopper's recent item most similar to a recommended one, when similar enough."""

    def __init__(self, state: UserState, space: ItemSpace | None) -> None:
        newest: list[str] = []
        for event in reversed(state.recent if space is not None else ()):
            item = event.item_id
            if event.kind in EXPLAINED_KINDS and item is not None and item not in newest and item in space:
                newest.append(item)
            if len(newest) >= EXPLAINING_ITEMS:
                break
        self.history = newest
        self.space = space

    def __call__(self, item_id: str) -> str | None:
        if self.space is None or not self.history or item_id not in self.space:
            return None
        scores = self.space.similarities(item_id, self.history)
        best = max(range(len(scores)), key=lambda i: (scores[i], -i))  # ties: the newer item
        return self.history[best] if scores[best] >= EXPLAINS else None
