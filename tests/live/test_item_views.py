"""The item-list views on one worker, its parts faked: what the worker reads of its partitions, how
the whole-shop answer says what it covers, and the 400/404/503 answers. The two-worker answers
through the real broker are in tests/integration/test_item_lists.py."""

from __future__ import annotations

import asyncio
import json
from types import SimpleNamespace
from typing import Any

from multidict import MultiDict

from streams.codec import encode_value
from streams.config import PARTITION_TABLE
from streams.core.catalog import CatalogItem
from streams.core.config import RulesConfig
from streams.core.copurchase import CoPurchases
from streams.core.processor import PartitionState
from streams.core.recommend import TrendingOnly
from streams.core.state import UserState
from streams.core.trending import Trending
from streams.live.item_views import ItemViews
from streams.live.openapi import item_list_paths
from streams.live.partitions import partition_key
from streams.live.web import openapi_document

HOUR = 3_600_000


class FakeLoop:
    """Owns partitions 0 and 1 of 4; partition 1 has counted nothing yet."""

    def __init__(self, states: dict[int, PartitionState]) -> None:
        self.partitions = SimpleNamespace(tasks={0: None, 1: None})
        self.rows = {
            (p, PARTITION_TABLE, partition_key(p)): encode_value(s.to_wire()) for p, s in states.items()
        }

    def read(self, partition: int, table: str, key: bytes) -> bytes | None:
        return self.rows.get((partition, table, key))


def worker(states: dict[int, PartitionState], users: dict[str, UserState] | None = None) -> Any:
    return SimpleNamespace(
        loop=FakeLoop(states),
        settings=SimpleNamespace(partitions=4, canonical_url=lambda: "http://127.0.0.1:1"),
        owners=SimpleNamespace(owner=lambda p: None),  # the other partitions have no owner now
        catalog=SimpleNamespace(
            items={"a": CatalogItem("a", 0, price=5.0), "b": CatalogItem("b", 0, price=50.0)}
        ),
        processor=SimpleNamespace(recommender=TrendingOnly(), new_partition_state=lambda: partition()),
        rules=RulesConfig(),
        view=SimpleNamespace(state=(users or {}).get, partition_for=lambda user: 0),
    )


def request(**params: str) -> Any:
    return SimpleNamespace(query=MultiDict(params))


def answer(response: Any) -> tuple[int, dict[str, Any]]:
    return response.status, json.loads(response.text)


def partition(*clicks: tuple[str, int], bought: tuple[list[str], ...] = ()) -> PartitionState:
    trending = Trending(HOUR)
    for item, ts in clicks:
        trending.add(item, "view", ts)
    counts = CoPurchases()
    for order in bought:
        counts.add_order(order, [])
    return PartitionState(trending, bought=counts)


def test_trending_covers_the_partitions_it_could_read_and_says_so() -> None:
    views = ItemViews(worker({0: partition(("a", HOUR), ("b", 0), ("b", 0))}))
    status, body = answer(asyncio.run(views.trending(request(n="5", fields="price"))))
    assert status == 200 and body["partitions"] == 2 and body["of"] == 4  # 2 and 3 have no owner now
    assert [(i["item_id"], i["price"], i["reason"]) for i in body["items"]] == [
        ("a", 5.0, "trending"),
        ("b", 50.0, "trending"),
    ]
    assert [i["score"] for i in body["items"]] == [1.0, 1.0]  # two views an hour before count as one
    status, body = answer(asyncio.run(views.trending(request(max_price="10"))))
    assert [i["item_id"] for i in body["items"]] == ["a"]
    status, body = answer(asyncio.run(views.trending(request(n="x"))))
    assert status == 400 and "n must be a whole number" in body["error"]


def test_bought_together_sums_partitions_and_refuses_unknown_items() -> None:
    views = ItemViews(worker({0: partition(bought=(["a", "b"], ["a", "c"], ["a", "b"]))}))
    status, body = answer(asyncio.run(views.bought_together(request(), "a")))
    assert status == 200 and [(i["item_id"], i["count"]) for i in body["items"]] == [("b", 2), ("c", 1)]
    assert body["item_id"] == "a" and body["list"] == "bought_together"
    assert answer(asyncio.run(views.bought_together(request(), "b")))[1]["items"][0]["item_id"] == "a"
    status, body = answer(asyncio.run(views.bought_together(request(), "zzz")))
    assert status == 404 and body == {"error": "unknown item", "item_id": "zzz"}


def test_similar_items_need_a_model_and_a_known_item() -> None:
    views = ItemViews(worker({}))
    assert answer(asyncio.run(views.similar(request(), "nope")))[0] == 404
    status, body = answer(asyncio.run(views.similar(request(), "a")))
    assert status == 503 and "without a model" in body["error"]
    assert answer(asyncio.run(views.similar(request(colour="red"), "a")))[0] == 400


def test_a_shoppers_list_without_a_model_is_the_partitions_trending() -> None:
    users = {"u1": UserState("u1")}
    views = ItemViews(worker({0: partition(("b", 0), ("a", 0), ("b", 0))}, users))
    status, body = answer(asyncio.run(views.recommendations(request(n="1", placement="home"), "u1")))
    assert status == 200 and body["fallback"] == "trending" and body["placement"] == "home"
    assert [(i["item_id"], i["reason"]) for i in body["items"]] == [("b", "trending")]
    assert answer(asyncio.run(views.recommendations(request(n="1"), "u2")))[0] == 404
    assert answer(asyncio.run(views.recommendations(request(n="0"), "u1")))[0] == 400


def test_the_openapi_document_lists_the_item_lists_and_their_parameters() -> None:
    paths = openapi_document()["paths"]
    assert set(item_list_paths()) <= set(paths)
    for path in ("/items/{item_id}/similar", "/items/{item_id}/bought-together", "/items/trending"):
        names = {p["name"] for p in paths[path]["get"]["parameters"]}
        assert {
            "n",
            "category",
            "min_price",
            "max_price",
            "in_stock",
            "exclude",
            "fields",
            "placement",
        } <= names
    recommendations = {p["name"] for p in paths["/users/{user_id}/recommendations"]["get"]["parameters"]}
    assert {"user_id", "n", "fields"} <= recommendations
