"""The model behind the core's protocols: its item embeddings as an `ItemSpace`, on the shipped model
and the generated shop it was trained on (`make default-model`: seed 7, 2,000 items)."""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from streams.core.catalog import CatalogItem
from streams.core.config import RulesConfig
from streams.core.item_lists import similar_items
from streams.core.listing import parse_query, select
from streams.core.on_request import recommend_now
from streams.core.processor import Processor
from streams.generate import TrafficConfig, generate_traffic
from streams.offline.engine import OfflineEngine
from streams.serving import DEFAULT_MODEL, ModelRecommender


@pytest.fixture(scope="module")
def model() -> ModelRecommender:
    return ModelRecommender(DEFAULT_MODEL)


def shop(events: int) -> list:
    return list(generate_traffic(TrafficConfig(users=100, items=2000, events=events, seed=7)))


def catalog_of(records: list) -> dict[str, CatalogItem]:
    return {r.key: CatalogItem.from_dict(r.value) for r in records if r.topic == "catalog"}


def test_the_space_is_the_models_embeddings_and_follows_a_swap(tmp_path: Path) -> None:
    model = ModelRecommender(DEFAULT_MODEL)
    space = model.item_space()
    assert space is model.item_space() and space.version == model.version
    a, b = space.embeddings.ids[:2]
    expected = float(space.embeddings.vector(a) @ space.embeddings.vector(b))
    assert space.similarities(a, [b, a, "not-an-item"]) == pytest.approx([expected, 1.0, 0.0], abs=1e-6)
    assert a in space and "not-an-item" not in space and len(space) == len(model.runtime.vocab.ids)
    model.swap(shutil.copytree(DEFAULT_MODEL, tmp_path / "copy"))
    assert model.item_space() is not space  # read again for the artifact now served
    assert model.item_space().embeddings.ids == space.embeddings.ids


def test_similar_items_share_the_items_category_far_more_often_than_chance(model: ModelRecommender) -> None:
    catalog = catalog_of(shop(0))
    space = model.item_space()
    items = [i for i in space.embeddings.ids if i in catalog][::5]
    same = total = 0
    for item in items:
        for listed in select(similar_items(space, item, parse_query([]), catalog), catalog, parse_query([])):
            total += 1
            same += catalog[listed["item_id"]].category == catalog[item].category
    sizes = Counter(item.category for item in catalog.values())
    chance = sum((n / len(catalog)) ** 2 for n in sizes.values())  # two random items, one category
    assert total == 10 * len(items)
    assert same / total > 3 * chance, (same / total, chance)


def test_similar_items_honour_filters_and_fields(model: ModelRecommender) -> None:
    catalog = catalog_of(shop(0))
    space = model.item_space()
    item = next(i for i in space.embeddings.ids if catalog[i].category != "books")
    query = parse_query(
        [("n", "7"), ("category", "books"), ("max_price", "20"), ("fields", "category,price")]
    )
    listed = select(similar_items(space, item, query, catalog), catalog, query)
    assert len(listed) == 7
    assert all(i["category"] == "books" and i["price"] <= 20 for i in listed)
    scores = [i["score"] for i in listed]
    assert scores == sorted(scores, reverse=True)


def test_a_request_time_list_from_the_real_model_is_deterministic_and_explained(
    model: ModelRecommender,
) -> None:
    records = shop(3000)
    processor = Processor(model, RulesConfig(), catalog={})
    result = OfflineEngine(processor, 4).run(records)
    catalog = processor.catalog
    reasons: Counter[str] = Counter()
    for user in sorted(result.states)[:30]:
        state = result.states[user]
        trending = next(iter(result.partitions.values())).trending
        query = parse_query([("n", "20"), ("fields", "title,category")])
        one = recommend_now(state, model, trending, catalog, processor.config, query, model.item_space())
        two = recommend_now(state, model, trending, catalog, processor.config, query, model.item_space())
        assert one == two
        assert len(one.items) == 20 and all(i["title"] for i in one.items)
        reasons.update(i["reason"] for i in one.items)
        for entry in one.items:
            if entry["reason"] == "because_you_viewed":
                assert entry["because"] in {e.item_id for e in state.recent}
    assert reasons["model"] and reasons["because_you_viewed"] and reasons["repeat"], reasons
    assert np.isfinite([v for v in reasons.values()]).all()
