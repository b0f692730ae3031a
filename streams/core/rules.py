"""Business rules after the model: what may be shown, and what fills in when the model can't help."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

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
    """Filter candidates (model output, or trending when `fallback` names why), boost, cut to top_n.

    Runs once per event over ~20 candidates: the reasons are tested inline, and without boosts only
    the kept top_n scores are rounded (a boost re-sorts on the rounded scores, so then all are)."""
    removed: dict[str, list[str]] = {}
    kept: list[tuple[str, float]] = []
    boosted: list[str] = []
    purchases = state.purchases if config.exclude_purchased else {}
    cart = state.cart if config.exclude_in_cart else {}
    stock = config.exclude_out_of_stock
    boosts = config.boosts
    for item, score in candidates:
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
            kept.append((item, score))
    if boosted:
        kept.sort(key=lambda pair: (-pair[1], pair[0]))
    provenance: dict[str, Any] = {"removed": removed, "fallback": fallback}
    if boosted:
        provenance["boosted"] = boosted
    if boosts:
        return RankedItems(kept[: config.top_n], provenance)
    return RankedItems(
        [(item, round(score, SCORE_DECIMALS)) for item, score in kept[: config.top_n]], provenance
    )
