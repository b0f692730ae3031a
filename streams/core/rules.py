"""Business rules after the model: what may be shown, and what fills in when the model can't help."""

from __future__ import annotations

from collections.abc import Sequence
from operator import itemgetter
from typing import Any, NamedTuple

import numpy as np

from streams.core.catalog import Catalog
from streams.core.config import RulesConfig
from streams.core.state import UserState

_item = itemgetter(0)  # of a (item, score) pair
_NONE: frozenset[str] = frozenset()
SCORE_DECIMALS = 6  # rounding keeps scores (and so ranks) stable across batch sizes and machines


class RankedItems(NamedTuple):  # one per event: cheaper to build than a frozen dataclass
    items: list[tuple[str, float]]
    provenance: dict[str, Any]


def exclusions(state: UserState, config: RulesConfig) -> frozenset[str]:
    """Items the model should not even propose: bought (and not cancelled) or already in the cart."""
    if not state.purchases and not state.cart:
        return _NONE  # most shoppers, at most events
    out: set[str] = set()
    if config.exclude_purchased:
        out.update(item for item, p in state.purchases.items() if p.status != "cancelled")
    if config.exclude_in_cart:
        out.update(state.cart)
    return frozenset(out)


def finalize(
    candidates: list[tuple[str, float]],
    state: UserState,
    catalog: Catalog,
    config: RulesConfig,
    fallback: str | None,
) -> RankedItems:
    """Filter candidates (model output, or trending when `fallback` names why), boost, cut to top_n."""
    return finalize_all([(candidates, state, fallback)], catalog, config)[0]


Job = tuple[list[tuple[str, float]], UserState, str | None]  # candidates, state, fallback


def finalize_all(jobs: Sequence[Job], catalog: Catalog, config: RulesConfig) -> list[RankedItems]:
    """`finalize` of every event of a batch. Each is filtered on its own, the few candidates a rule
    may remove found by set operations (`_removals`): most events have none. Without boosts only the
    kept top_n scores are rounded, all in one pass (`round_scores`). A boost re-sorts on the rounded
    scores, so then all are rounded first."""
    item_lists = [list(map(_item, candidates)) for candidates, _, _ in jobs]
    # The batch's candidates overlap: the catalog is asked once per item, not once per candidate.
    out_of_stock = _out_of_stock(set().union(*item_lists), catalog) if config.exclude_out_of_stock else set()
    out: list[RankedItems] = []
    for (candidates, state, fallback), items in zip(jobs, item_lists, strict=True):
        reasons = _removals(items, state, out_of_stock, config)
        removed: dict[str, list[str]] = {}
        kept = candidates
        if reasons:
            for item in items:
                if item in reasons:
                    removed.setdefault(reasons[item], []).append(item)
            kept = [pair for pair in candidates if pair[0] not in reasons]
        boosted: list[str] = []
        if config.boosts:
            kept, boosted = _boosted(kept, catalog, config.boosts)
        provenance: dict[str, Any] = {"removed": removed, "fallback": fallback}
        if boosted:
            provenance["boosted"] = boosted
        out.append(RankedItems(kept[: config.top_n], provenance))
    if config.boosts:
        return out
    rounded = round_scores([score for ranked in out for _, score in ranked.items])
    at = 0
    for ranked in out:
        end = at + len(ranked.items)
        ranked.items[:] = zip(map(_item, ranked.items), rounded[at:end], strict=True)
        at = end
    return out


def _out_of_stock(items: set[str], catalog: Catalog) -> set[str]:
    return {item for item in items if (known := catalog.get(item)) is not None and known.in_stock is False}


def _removals(
    items: list[str], state: UserState, out_of_stock: set[str], config: RulesConfig
) -> dict[str, str]:
    """Why a rule removes a candidate, for each one it removes: bought (and not cancelled), in the
    cart, out of stock, in that order, tested only on the candidates that set operations (in C) find
    bought, in the cart or out of stock."""
    if not (state.purchases or state.cart or out_of_stock):
        return {}  # nothing any rule could remove: most events
    purchases = state.purchases if config.exclude_purchased else {}
    cart = state.cart if config.exclude_in_cart else {}
    suspects = purchases.keys() & items | cart.keys() & items | out_of_stock.intersection(items)
    reasons: dict[str, str] = {}
    for item in suspects:
        if item in purchases and purchases[item].status != "cancelled":
            reasons[item] = "purchased"
        elif item in cart:
            reasons[item] = "in_cart"
        elif item in out_of_stock:
            reasons[item] = "out_of_stock"
    return reasons


def _boosted(
    kept: list[tuple[str, float]], catalog: Catalog, boosts: dict[str, float]
) -> tuple[list[tuple[str, float]], list[str]]:
    """Scores times their category's boost, all rounded, re-sorted when any was boosted."""
    scored: list[tuple[str, float]] = []
    boosted: list[str] = []
    for item, score in kept:
        factor = boosts.get(getattr(catalog.get(item), "category", None) or "", 1.0)
        if factor != 1.0:
            score *= factor
            boosted.append(item)
        scored.append((item, round(score, SCORE_DECIMALS)))
    if boosted:
        scored.sort(key=lambda pair: (-pair[1], pair[0]))
    return scored, boosted


def round_scores(scores: list[float]) -> list[float]:
    """`round(score, SCORE_DECIMALS)` of each score, in one numpy pass.

    Python rounds the exact binary value to the nearest decimal, then reads that back: the nearest
    double to N / 10^6. numpy's rint(x * 10^6) / 10^6 gives the same N unless x * 10^6 lies within
    its own rounding error of a half (the product is off by at most 6e-8 below 10^9), and then the
    same double (N is exact, the division is correctly rounded). The few scores that near a half,
    and any outside that range, are rounded by Python."""
    x = np.array(scores, dtype=np.float64)
    with np.errstate(invalid="ignore", over="ignore"):  # inf and nan: unsure, rounded by Python
        scaled = x * 10.0**SCORE_DECIMALS
        out: list[float] = (np.rint(scaled) / 10.0**SCORE_DECIMALS).tolist()
        unsure = ~(np.abs(x) < 1e3) | (np.abs(scaled - np.floor(scaled) - 0.5) < 1e-6)
    for i in np.flatnonzero(unsure).tolist():
        out[i] = round(scores[i], SCORE_DECIMALS)
    return out
