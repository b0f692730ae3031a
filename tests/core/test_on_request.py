from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from streams.core.catalog import CatalogItem
from streams.core.config import RulesConfig
from streams.core.listing import ListQuery, parse_query
from streams.core.on_request import EXPLAINS, recommend_now
from streams.core.processor import Processor
from streams.core.recommend import TrendingOnly
from streams.core.state import UserState
from streams.core.trending import Trending
from tests.core.fakes import FakeRecommender
from tests.core.test_processor import T0, Driver, click, order


class FakeSpace:
    """Items sku-N: sku-40 and sku-41 are like sku-2; nothing else is like anything."""

    def __init__(self) -> None:
        self.items = {f"sku-{n}" for n in range(100)}

    def __contains__(self, item_id: object) -> bool:
        return item_id in self.items

    def neighbours(self, item_id: str, k: int, exclude: Sequence[str] = ()) -> list[tuple[str, float]]:
        raise AssertionError("not used for a shopper's list")

    def similarities(self, item_id: str, others: Sequence[str]) -> list[float]:
        alike = {("sku-40", "sku-2"), ("sku-41", "sku-2")}
        return [1.0 if (item_id, o) in alike else 0.0 for o in others]


def shopper(*events: object, config: RulesConfig | None = None) -> tuple[UserState, Trending]:
    driver = Driver(Processor(FakeRecommender(), config or RulesConfig()))
    driver.run(list(events))  # type: ignore[arg-type]
    return driver.states["u1"], driver.partitions[0].trending


def test_reasons_repeat_model_and_because_you_viewed() -> None:
    state, trending = shopper(click(1, "u1", T0, item="sku-2"), click(2, "u1", T0 + 1, item="sku-40"))
    listed = recommend_now(state, FakeRecommender(), trending, {}, RulesConfig(), ListQuery(n=5), FakeSpace())
    reasons = {i["item_id"]: (i["reason"], i.get("because")) for i in listed.items}
    assert reasons["sku-40"] == ("repeat", None)  # the fake ranks around the last item: sku-40 first
    assert reasons["sku-41"] == ("because_you_viewed", "sku-2")
    assert reasons["sku-39"] == ("model", None)
    assert [i["rank"] for i in listed.items] == [1, 2, 3, 4, 5]
    assert listed.fallback is None and listed.model_version == "fake-1"
    assert EXPLAINS <= 1.0


def test_without_a_space_nothing_is_explained_by_similarity() -> None:
    state, trending = shopper(click(1, "u1", T0, item="sku-2"), click(2, "u1", T0 + 1, item="sku-40"))
    listed = recommend_now(state, FakeRecommender(), trending, {}, RulesConfig(), ListQuery(n=5))
    assert {i["reason"] for i in listed.items} == {"repeat", "model"}


def test_boosted_category_is_the_reason_and_changes_the_order() -> None:
    catalog = {"sku-45": CatalogItem("sku-45", 0, category="promo")}
    config = RulesConfig(boosts={"promo": 100.0})
    state, trending = shopper(click(1, "u1", T0, item="sku-40"), config=config)
    listed = recommend_now(state, FakeRecommender(), trending, catalog, config, ListQuery(n=3))
    assert listed.items[0]["item_id"] == "sku-45"
    assert listed.items[0]["reason"] == "boosted_category" and listed.items[0]["category"] == "promo"


def test_purchased_carted_and_excluded_items_never_come_back() -> None:
    state, trending = shopper(
        click(1, "u1", T0, item="sku-40"),
        click(2, "u1", T0 + 1, kind="add_to_cart", item="sku-41"),
        order(3, "u1", T0 + 2, "sku-39"),
        click(4, "u1", T0 + 3, item="sku-40"),
    )
    query = parse_query([("n", "50"), ("exclude", "sku-42,sku-38")])
    listed = recommend_now(state, FakeRecommender(), trending, {}, RulesConfig(), query)
    got = [i["item_id"] for i in listed.items]
    assert len(got) == 50
    assert not {"sku-41", "sku-39", "sku-42", "sku-38"} & set(got)


def test_filters_reach_past_the_streams_top_n() -> None:
    catalog = {f"sku-{n}": CatalogItem(f"sku-{n}", 0, price=float(n), category="far") for n in range(80, 100)}
    state, trending = shopper(click(1, "u1", T0, item="sku-10"))
    query = parse_query([("category", "far"), ("n", "5"), ("fields", "price")])
    listed = recommend_now(state, FakeRecommender(), trending, catalog, RulesConfig(), query)
    assert [(i["item_id"], i["price"]) for i in listed.items] == [
        (f"sku-{n}", float(n)) for n in range(80, 85)
    ]


def test_a_cold_shopper_gets_trending_items_with_that_reason() -> None:
    driver = Driver(Processor(TrendingOnly(), RulesConfig()))
    driver.run(
        [
            click(1, "u2", T0, item="sku-7"),
            click(2, "u2", T0 + 1, item="sku-8"),
            click(3, "u1", T0 + 2, item="x"),
        ]
    )
    state, trending = driver.states["u1"], driver.partitions[0].trending
    listed = recommend_now(state, TrendingOnly(), trending, {}, RulesConfig(), ListQuery(n=5))
    assert listed.fallback == "trending" and listed.purchase_intent == 0.0
    assert {i["item_id"] for i in listed.items} == {"sku-7", "sku-8", "x"}
    assert {i["reason"] for i in listed.items} == {"trending"}


def test_the_same_state_and_query_give_the_same_answer_and_id() -> None:
    state, trending = shopper(click(1, "u1", T0, item="sku-2"), click(2, "u1", T0 + 1, item="sku-40"))
    one = recommend_now(state, FakeRecommender(), trending, {}, RulesConfig(), ListQuery(n=7), FakeSpace())
    two = recommend_now(
        state.copy(), FakeRecommender(), trending, {}, RulesConfig(), ListQuery(n=7), FakeSpace()
    )
    assert one == two
    other = recommend_now(state, FakeRecommender(), trending, {}, RulesConfig(), ListQuery(n=8), FakeSpace())
    assert other.rec_id != one.rec_id
    later, _ = shopper(
        click(1, "u1", T0, item="sku-2"), click(2, "u1", T0 + 1, item="sku-40"), click(3, "u1", T0 + 2)
    )
    moved = recommend_now(later, FakeRecommender(), trending, {}, RulesConfig(), ListQuery(n=7), FakeSpace())
    assert moved.rec_id != one.rec_id
    document = one.document("u1", replace(ListQuery(n=7), placement="cart"), "e2")
    assert document["placement"] == "cart" and document["through_event_id"] == "e2"
    assert document["rec_id"] == one.rec_id and len(document["items"]) == 7
