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


def _reason(item: str, state: UserState, catalog: Catalog, config: RulesConfig) -> str | None:
    if config.exclude_purchased and item in state.purchases and state.purchases[item].status != "cancelled":
        return "purchased"
    if config.exclude_in_cart and item in state.cart:
        return "in_cart"
    if config.exclude_out_of_stock:
        known = catalog.get(item)
        if known is not None and known.in_stock is False:
            return "out_of_stock"
    return None


def finalize(
    candidates: list[tuple[str, float]],
    state: UserState,
    catalog: Catalog,
    config: RulesConfig,
    fallback: str | None,
) -> RankedItems:
    """Filter candidates (model output, or trending when `fallback` names why), boost, cut to top_n."""
    removed: dict[str, list[str]] = {}
    kept: list[tuple[str, float]] = []
    boosted: list[str] = []
    for item, score in candidates:
        reason = _reason(item, state, catalog, config)
        if reason is not None:
            removed.setdefault(reason, []).append(item)
            continue
        if config.boosts:
            category = getattr(catalog.get(item), "category", None)
            factor = config.boosts.get(category or "", 1.0)
            if factor != 1.0:
                score *= factor
                boosted.append(item)
        kept.append((item, round(score, SCORE_DECIMALS)))
    if boosted:
        kept.sort(key=lambda pair: (-pair[1], pair[0]))
    provenance: dict[str, Any] = {"removed": removed, "fallback": fallback}
    if boosted:
        provenance["boosted"] = boosted
    return RankedItems(kept[: config.top_n], provenance)
