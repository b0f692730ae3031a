from __future__ import annotations

import pytest

from streams.core.catalog import CatalogItem
from streams.core.listing import MAX_EXCLUDE, Candidate, ListQuery, QueryError, parse_query, select

CATALOG = {
    "a": CatalogItem("a", 0, price=10.0, in_stock=True, category="shoes", title="Red shoe"),
    "b": CatalogItem("b", 0, price=50.0, in_stock=False, category="shoes", title="Blue shoe"),
    "c": CatalogItem("c", 0, price=80.0, in_stock=True, category="books"),
    "d": CatalogItem("d", 0, category="books"),  # no price, stock unknown
}
RANKED = [Candidate(i, s, "model") for i, s in (("a", 0.9), ("b", 0.8), ("c", 0.7), ("d", 0.6), ("e", 0.5))]


def ids(query: ListQuery, candidates: list[Candidate] = RANKED) -> list[str]:
    return [item["item_id"] for item in select(candidates, CATALOG, query)]


def test_defaults_without_parameters() -> None:
    assert parse_query([]) == ListQuery(n=10)


def test_every_parameter_is_read() -> None:
    query = parse_query(
        [
            ("n", "25"),
            ("placement", "product-page"),
            ("category", "shoes"),
            ("min_price", "5"),
            ("max_price", "60.5"),
            ("in_stock", "true"),
            ("exclude", "x, y"),
            ("exclude", "z"),
            ("fields", "title,price"),
            ("fields", "title"),
        ]
    )
    assert query == ListQuery(
        25, "product-page", "shoes", 5.0, 60.5, True, frozenset("xyz"), ("title", "price")
    )


@pytest.mark.parametrize(
    ("pairs", "message"),
    [
        ([("count", "3")], "unknown parameter(s): count; known: n, placement"),
        ([("n", "0")], "n must be from 1 to 100, got 0"),
        ([("n", "101")], "n must be from 1 to 100, got 101"),
        ([("n", "ten")], "n must be a whole number from 1 to 100, got 'ten'"),
        ([("n", "3"), ("n", "4")], "parameter n is given more than once"),
        ([("min_price", "cheap")], "min_price must be a number, got 'cheap'"),
        ([("max_price", "-1")], "max_price must be a finite price of 0 or more"),
        ([("max_price", "nan")], "max_price must be a finite price of 0 or more"),
        ([("min_price", "9"), ("max_price", "3")], "min_price 9 is above max_price 3"),
        ([("in_stock", "yes")], "in_stock must be true or false, got 'yes'"),
        ([("placement", "a b")], "placement must be 1 to 64 letters"),
        ([("fields", "title,colour")], "unknown field(s): colour; known: title, price, category, in_stock"),
        ([("exclude", ",".join(f"i{n}" for n in range(MAX_EXCLUDE + 1)))], "exclude takes at most"),
        ([("category", "")], "category must be 1 to 128 characters"),
    ],
)
def test_bad_parameters_are_refused_with_a_message(pairs: list[tuple[str, str]], message: str) -> None:
    with pytest.raises(QueryError) as caught:
        parse_query(pairs)
    assert message in str(caught.value)


def test_the_canonical_spelling_ignores_the_order_of_parameters_and_ids() -> None:
    one = parse_query([("exclude", "b,a"), ("n", "5"), ("category", "shoes")])
    two = parse_query([("category", "shoes"), ("n", "5"), ("exclude", "a"), ("exclude", "b")])
    assert one.canonical() == two.canonical()
    assert one.canonical() != parse_query([("n", "6")]).canonical()


def test_n_is_honoured_and_ranks_follow_the_candidates() -> None:
    listed = select(RANKED, CATALOG, ListQuery(n=3))
    assert [(i["item_id"], i["rank"], i["score"], i["reason"]) for i in listed] == [
        ("a", 1, 0.9, "model"),
        ("b", 2, 0.8, "model"),
        ("c", 3, 0.7, "model"),
    ]


def test_filters_use_the_catalog_and_never_guess() -> None:
    assert ids(ListQuery(category="books")) == ["c", "d"]
    assert ids(ListQuery(min_price=20)) == ["b", "c"]  # d and e have no known price
    assert ids(ListQuery(max_price=50)) == ["a", "b"]
    assert ids(ListQuery(in_stock=True)) == ["a", "c"]
    assert ids(ListQuery(in_stock=False)) == ["b"]
    assert ids(ListQuery(exclude=frozenset({"a", "c"}))) == ["b", "d", "e"]
    assert ids(ListQuery(category="shoes", in_stock=True, max_price=20)) == ["a"]


def test_fields_are_present_even_when_the_catalog_lacks_them() -> None:
    listed = select(RANKED, CATALOG, ListQuery(fields=("title", "price", "in_stock")))
    assert listed[0] == {
        "item_id": "a",
        "score": 0.9,
        "rank": 1,
        "reason": "model",
        "title": "Red shoe",
        "price": 10.0,
        "in_stock": True,
    }
    assert {k: listed[3][k] for k in ("title", "price", "in_stock")} == {
        "title": None,
        "price": None,
        "in_stock": None,
    }
    assert "category" not in listed[0]


def test_reason_details_are_kept_and_an_item_is_listed_once() -> None:
    candidates = [Candidate("a", 0.5, "because_you_viewed", {"because": "b"}), Candidate("a", 0.4, "model")]
    assert select(candidates, CATALOG, ListQuery()) == [
        {"item_id": "a", "score": 0.5, "rank": 1, "reason": "because_you_viewed", "because": "b"}
    ]
