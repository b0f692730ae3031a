"""`GET /items`: the catalog a page at a time, filtered, in item-id order (sku-2 before sku-10)."""

from __future__ import annotations

import pytest

from streams.core.catalog import CatalogItem
from streams.live.catalog_views import CatalogQuery, CatalogQueryError, list_catalog, parse_catalog_query

CATALOG = {
    item.item_id: item
    for item in (
        CatalogItem("sku-10", 1, 12.5, True, "books", "A Long Book"),
        CatalogItem("sku-2", 1, 99.0, False, "shoes", "Red Shoe"),
        CatalogItem("sku-1", 1, 5.0, True, "books", "Short Book"),
        CatalogItem("gift-card", 1, None, None, None, None),
    )
}


def ids(document: dict) -> list[str]:
    return [item["item_id"] for item in document["items"]]


def test_pages_in_item_id_order_with_the_total_and_categories() -> None:
    first = list_catalog(CATALOG, CatalogQuery(offset=0, limit=2))
    assert ids(first) == ["gift-card", "sku-1"]
    assert first["total"] == 4
    assert first["categories"] == {"books": 2, "shoes": 1}
    assert ids(list_catalog(CATALOG, CatalogQuery(offset=2, limit=2))) == ["sku-2", "sku-10"]
    assert first["items"][1] == {"item_id": "sku-1", "ts": 1, "price": 5.0, "in_stock": True,
                                 "category": "books", "title": "Short Book"}  # fmt: skip


def test_filters_by_category_text_and_stock() -> None:
    assert ids(list_catalog(CATALOG, parse_catalog_query({"category": "books"}))) == ["sku-1", "sku-10"]
    found = list_catalog(CATALOG, parse_catalog_query({"q": "BOOK", "limit": "1"}))
    assert ids(found) == ["sku-1"] and found["total"] == 2
    assert ids(list_catalog(CATALOG, parse_catalog_query({"in_stock": "false"}))) == ["sku-2"]
    assert ids(list_catalog(CATALOG, parse_catalog_query({"q": "gift"}))) == ["gift-card"]


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"limit": "0"}, "limit must be from 1 to 200"),
        ({"limit": "201"}, "limit must be from 1 to 200"),
        ({"offset": "-1"}, "offset must be"),
        ({"in_stock": "yes"}, "in_stock must be true or false"),
        ({"q": "x" * 101}, "q is at most 100"),
        ({"sort": "price"}, "unknown parameter 'sort'"),
    ],
)
def test_a_bad_parameter_is_a_clear_error(params: dict[str, str], message: str) -> None:
    with pytest.raises(CatalogQueryError, match=message):
        parse_catalog_query(params)
