"""Item lists that belong to no shopper: items similar to an item (the model's embeddings), items
bought together with it, and what is trending, the last two for the whole shop: every partition's
counts together, whichever worker holds them.

Pure: the partitions' states in, ranked candidates out (`streams.core.listing.select` filters and
cuts them). The same partition states give the same lists whatever order they come in.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from streams.core.catalog import Catalog
from streams.core.listing import Candidate, ListQuery
from streams.core.on_request import ItemSpace
from streams.core.trending import Trending

SIMILAR_FIRST = 50  # neighbours asked first; doubled while filters leave fewer than n


def similar_items(space: ItemSpace, item_id: str, query: ListQuery, catalog: Catalog) -> list[Candidate]:
    """Neighbours of `item_id` by embedding similarity, enough of them for `query` to find n items
    after its filters (all of them, if it must)."""
    k = SIMILAR_FIRST + query.n
    while True:
        ranked = space.neighbours(item_id, k, sorted(query.exclude))
        admitted = sum(1 for item, _ in ranked if query.admits(catalog.get(item)))
        if admitted >= query.n or len(ranked) < k:
            return [Candidate(item, round(score, 6), "similar") for item, score in ranked]
        k *= 2


def shop_trending(parts: Mapping[int, Trending]) -> list[Candidate]:
    """Every partition's decayed counts as of the shop's latest counted event time, summed per item
    (partition by partition, in their numbers' order: the same sum wherever they came from), best
    first (ties by id)."""
    counted = [parts[p] for p in sorted(parts) if parts[p].counts]
    if not counted:
        return []
    now = max(p.clock for p in counted)
    totals: dict[str, float] = {}
    for part in counted:
        scale = math.exp2((part.ref - now) / part.half_life_ms)
        for item, count in sorted(part.counts.items()):
            totals[item] = totals.get(item, 0.0) + count * scale
    ranked = sorted(
        ((item, round(score, 6)) for item, score in totals.items()), key=lambda kv: (-kv[1], kv[0])
    )
    return [Candidate(item, score, "trending") for item, score in ranked]


def shop_bought_together(partners: Mapping[int, Mapping[str, int]]) -> list[Candidate]:
    """Summed over the partitions (each one's `CoPurchases.partners` of an item): the items bought
    together with that item, most often first (ties by id)."""
    totals: dict[str, int] = {}
    for counts in partners.values():
        for other, count in counts.items():
            totals[other] = totals.get(other, 0) + count
    ranked = sorted(totals.items(), key=lambda kv: (-kv[1], kv[0]))
    return [Candidate(item, float(count), "bought_together", {"count": count}) for item, count in ranked]
