"""Business rules after the model: the batch form gives exactly what one event at a time gives."""

from __future__ import annotations

import math
import random

from streams.core.catalog import CatalogItem
from streams.core.config import RulesConfig
from streams.core.rules import SCORE_DECIMALS, finalize, finalize_all, round_scores
from streams.core.state import CartLine, Purchase, UserState


def test_round_scores_is_pythons_round_bit_for_bit() -> None:
    rng = random.Random(5)
    scores = [rng.random() for _ in range(20_000)]
    scores += [rng.random() * 10.0 ** rng.randint(-12, 12) for _ in range(5_000)]
    scores += [(n + 0.5) / 1e6 for n in range(2_000)]  # exact and near ties at the sixth decimal
    scores += [math.nextafter((n + 0.5) / 1e6, d) for n in range(2_000) for d in (0.0, 1.0)]
    scores += [0.0, -0.0, 1.0, -0.25, 5e-7, 4.9999999e-7, 1e300, math.inf]
    rounded = round_scores(scores)
    expected = [round(s, SCORE_DECIMALS) for s in scores]
    assert [r.hex() for r in rounded] == [e.hex() for e in expected]
    assert math.isnan(round_scores([math.nan])[0])


def _one_by_one(candidates: list, state: UserState, catalog: dict, config: RulesConfig, fallback: str | None):
    """The rules' definition, one event and one candidate at a time."""
    removed: dict[str, list[str]] = {}
    kept, boosted = [], []
    for item, score in candidates:
        bought = state.purchases.get(item)
        if config.exclude_purchased and bought is not None and bought.status != "cancelled":
            removed.setdefault("purchased", []).append(item)
        elif config.exclude_in_cart and item in state.cart:
            removed.setdefault("in_cart", []).append(item)
        elif config.exclude_out_of_stock and item in catalog and catalog[item].in_stock is False:
            removed.setdefault("out_of_stock", []).append(item)
        else:
            factor = config.boosts.get(catalog[item].category or "", 1.0) if item in catalog else 1.0
            if factor != 1.0:
                score *= factor
                boosted.append(item)
            kept.append((item, round(score, SCORE_DECIMALS)))
    if boosted:
        kept.sort(key=lambda pair: (-pair[1], pair[0]))
    provenance = {"removed": removed, "fallback": fallback, **({"boosted": boosted} if boosted else {})}
    return kept[: config.top_n], provenance


def _shopper(user: str) -> UserState:
    state = UserState(user)
    state.purchases["sku-1"] = Purchase(1, "o1", "placed", 1)
    state.purchases["sku-2"] = Purchase(1, "o2", "cancelled", 1)
    state.cart["sku-3"] = CartLine([[1, 1]])
    return state


def test_finalize_all_is_finalize_of_each_event() -> None:
    rng = random.Random(7)
    catalog = {
        f"sku-{n}": CatalogItem(f"sku-{n}", 0, in_stock=n % 5 != 0, category=("books", "toys")[n % 2])
        for n in range(40)
    }
    jobs = [
        ([(f"sku-{n}", rng.random()) for n in rng.sample(range(40), 20)], _shopper(f"u{j}"), fb)
        for j, fb in enumerate([None, "trending"] * 10)
    ]
    # ... and shoppers none of whose candidates a rule removes (most events), or only some rules would
    in_stock = [n for n in range(40) if n % 5]
    for j in range(10):
        shopper = UserState(f"e{j}") if j % 2 else _shopper(f"e{j}")
        jobs.append(([(f"sku-{n}", rng.random()) for n in rng.sample(in_stock[3:], 20)], shopper, None))
    for config in (
        RulesConfig(),
        RulesConfig(boosts={"books": 1.5}),
        RulesConfig(exclude_out_of_stock=False),
        RulesConfig(exclude_purchased=False, exclude_in_cart=False),
    ):
        together = finalize_all(jobs, catalog, config)
        assert together == [finalize(c, s, catalog, config, fb) for c, s, fb in jobs]
        assert [(r.items, r.provenance) for r in together] == [
            _one_by_one(c, s, catalog, config, fb) for c, s, fb in jobs
        ]
        for ranked, (candidates, _, fallback) in zip(together, jobs, strict=True):
            assert len(ranked.items) <= config.top_n and ranked.provenance["fallback"] == fallback
            removed = {i for items in ranked.provenance["removed"].values() for i in items}
            shown = {i for i, _ in ranked.items}
            assert not config.exclude_purchased or "sku-1" not in shown
            assert not config.exclude_in_cart or "sku-3" not in shown
            assert removed <= {c for c, _ in candidates}
    plain = finalize_all(jobs, catalog, RulesConfig())[0]
    assert all(score == round(score, SCORE_DECIMALS) for _, score in plain.items)
