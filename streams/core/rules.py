"""Business rules after the model: what may be shown, and what fills in when the model can't help."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from streams.core.catalog import Catalog
from streams.core.config import RulesConfig
from streams.core.state import UserState

SCORE_DECIMALS = 6  # rounding keeps scores (and so ranks) stable across batch sizes and machines


@dataclass(frozen=True, slots=True)
class RankedItems:
    items: list[tuple[str, float]]
    provenance: dict[str, Any]


def exclusions(state: UserState, config: RulesConfig) -> frozenset[str]:
    """Items the model should not even propose: bought (and not cancelled) or already in the cart."""
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
    """`finalize` of every event of a batch. Each is filtered on its own (the reasons tested inline:
    ~20 candidates an event); without boosts only the kept top_n scores are rounded, all in one pass
    (`round_scores`). A boost re-sorts on the rounded scores, so then all are rounded first."""
    out: list[RankedItems] = []
    purchased = config.exclude_purchased
    stock = config.exclude_out_of_stock
    boosts = config.boosts
    for candidates, state, fallback in jobs:
        removed: dict[str, list[str]] = {}
        kept: list[tuple[str, float]] = []
        boosted: list[str] = []
        purchases = state.purchases if purchased else {}
        cart = state.cart if config.exclude_in_cart else {}
        for pair in candidates:
            item, score = pair
            if item in purchases and purchases[item].status != "cancelled":
                removed.setdefault("purchased", []).append(item)
            elif item in cart:
                removed.setdefault("in_cart", []).append(item)
            elif stock and (known := catalog.get(item)) is not None and known.in_stock is False:
                removed.setdefault("out_of_stock", []).append(item)
            elif boosts:
                factor = boosts.get(getattr(catalog.get(item), "category", None) or "", 1.0)
                if factor != 1.0:
                    score *= factor
                    boosted.append(item)
                kept.append((item, round(score, SCORE_DECIMALS)))
            else:
                kept.append(pair)  # rounded below, with the batch's
        if boosted:
            kept.sort(key=lambda pair: (-pair[1], pair[0]))
        provenance: dict[str, Any] = {"removed": removed, "fallback": fallback}
        if boosted:
            provenance["boosted"] = boosted
        out.append(RankedItems(kept[: config.top_n], provenance))
    if boosts:
        return out
    rounded = iter(round_scores([score for ranked in out for _, score in ranked.items]))
    for ranked in out:
        ranked.items[:] = [(item, next(rounded)) for item, _ in ranked.items]
    return out


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
