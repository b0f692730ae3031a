"""Request-time parameters of the item-list endpoints: what was asked for, checked, and applied to
ranked candidates (filters, count, catalog fields, a reason per item).

Pure: the HTTP layer hands the query string's pairs in and gets a `ListQuery` or a `QueryError`
whose message the client sees (400); the same query over the same candidates and catalog always
gives the same list.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from streams.core.catalog import Catalog, CatalogItem

DEFAULT_N = 10
MAX_N = 100
MAX_EXCLUDE = 200  # ids one request may exclude: a page's worth, not the catalogue
MAX_ID_LENGTH = 128  # as schemas/catalog_item.v1.json bounds an item id
FIELDS = ("title", "price", "category", "in_stock")  # what the catalog knows of an item
PLACEMENT = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
PARAMETERS = ("n", "placement", "category", "min_price", "max_price", "in_stock", "exclude", "fields")
LISTS = ("exclude", "fields")  # may repeat, and take comma-separated values
BOOLEANS = {"true": True, "1": True, "false": False, "0": False}


class QueryError(ValueError):
    """A parameter the endpoints do not know, or a value they cannot use; the message says which."""


@dataclass(frozen=True, slots=True)
class ListQuery:
    n: int = DEFAULT_N
    placement: str | None = None  # where the list is shown; echoed back, never filters
    category: str | None = None
    min_price: float | None = None
    max_price: float | None = None
    in_stock: bool | None = None
    exclude: frozenset[str] = frozenset()
    fields: tuple[str, ...] = ()

    def canonical(self) -> str:
        """The query in one fixed spelling (parameter order and list order do not matter): what a
        deterministic list id is derived from."""
        parts = [
            f"n={self.n}",
            f"placement={self.placement or ''}",
            f"category={self.category or ''}",
            f"min_price={'' if self.min_price is None else repr(self.min_price)}",
            f"max_price={'' if self.max_price is None else repr(self.max_price)}",
            f"in_stock={'' if self.in_stock is None else str(self.in_stock).lower()}",
            f"exclude={','.join(sorted(self.exclude))}",
            f"fields={','.join(self.fields)}",
        ]
        return "&".join(parts)

    def admits(self, item: CatalogItem | None) -> bool:
        """True if the catalog's facts about the item pass every filter. An item the catalog does not
        know (or a fact it lacks) fails a filter on that fact: the answer never guesses."""
        if self.category is not None and getattr(item, "category", None) != self.category:
            return False
        price = getattr(item, "price", None)
        if self.min_price is not None and (price is None or price < self.min_price):
            return False
        if self.max_price is not None and (price is None or price > self.max_price):
            return False
        return self.in_stock is None or getattr(item, "in_stock", None) is self.in_stock


@dataclass(frozen=True, slots=True)
class Candidate:
    """An item a list may show, ranked by its producer, with why it is there."""

    item_id: str
    score: float
    reason: str  # model, repeat, trending, boosted_category, because_you_viewed, similar, bought_together
    detail: dict[str, Any] = field(default_factory=dict)  # e.g. {"because": item id} or {"count": 3}


def parse_query(pairs: Iterable[tuple[str, str]]) -> ListQuery:
    """A `ListQuery` from the query string's (name, value) pairs, in order; `QueryError` otherwise."""
    single: dict[str, str] = {}
    lists: dict[str, list[str]] = {name: [] for name in LISTS}
    unknown: list[str] = []
    for name, value in pairs:
        if name in LISTS:
            lists[name] += [v.strip() for v in value.split(",") if v.strip()]
        elif name in PARAMETERS:
            if name in single:
                raise QueryError(f"parameter {name} is given more than once")
            single[name] = value.strip()
        else:
            unknown.append(name)
    if unknown:
        raise QueryError(
            f"unknown parameter(s): {', '.join(sorted(set(unknown)))}; known: {', '.join(PARAMETERS)}"
        )
    min_price = _price(single, "min_price")
    max_price = _price(single, "max_price")
    if min_price is not None and max_price is not None and min_price > max_price:
        raise QueryError(f"min_price {min_price:g} is above max_price {max_price:g}")
    return ListQuery(
        n=_count(single.get("n")),
        placement=_placement(single.get("placement")),
        category=_category(single.get("category")),
        min_price=min_price,
        max_price=max_price,
        in_stock=_boolean(single.get("in_stock")),
        exclude=_exclude(lists["exclude"]),
        fields=_fields(lists["fields"]),
    )


def select(candidates: Iterable[Candidate], catalog: Catalog, query: ListQuery) -> list[dict[str, Any]]:
    """The first `query.n` candidates the filters admit, each once, in the candidates' order:
    id, score, rank, reason (and its detail), and the requested catalog fields (null when unknown)."""
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    for candidate in candidates:
        if len(out) >= query.n:
            break
        item_id = candidate.item_id
        if item_id in seen or item_id in query.exclude:
            continue
        known = catalog.get(item_id)
        if not query.admits(known):
            continue
        seen.add(item_id)
        entry: dict[str, Any] = {
            "item_id": item_id,
            "score": candidate.score,
            "rank": len(out) + 1,
            "reason": candidate.reason,
            **candidate.detail,
        }
        for name in query.fields:
            entry[name] = getattr(known, name, None)
        out.append(entry)
    return out


def _count(raw: str | None) -> int:
    if raw is None:
        return DEFAULT_N
    try:
        n = int(raw)
    except ValueError:
        raise QueryError(f"n must be a whole number from 1 to {MAX_N}, got {raw!r}") from None
    if not 1 <= n <= MAX_N:
        raise QueryError(f"n must be from 1 to {MAX_N}, got {n}")
    return n


def _price(single: dict[str, str], name: str) -> float | None:
    raw = single.get(name)
    if raw is None:
        return None
    try:
        value = float(raw)
    except ValueError:
        raise QueryError(f"{name} must be a number, got {raw!r}") from None
    if not math.isfinite(value) or value < 0:
        raise QueryError(f"{name} must be a finite price of 0 or more, got {raw!r}")
    return value


def _boolean(raw: str | None) -> bool | None:
    if raw is None:
        return None
    value = BOOLEANS.get(raw.lower())
    if value is None:
        raise QueryError(f"in_stock must be true or false, got {raw!r}")
    return value


def _placement(raw: str | None) -> str | None:
    if raw is None:
        return None
    if not PLACEMENT.match(raw):
        raise QueryError(f"placement must be 1 to 64 letters, digits or _ . : -, got {raw!r}")
    return raw


def _category(raw: str | None) -> str | None:
    if raw is None:
        return None
    if not raw or len(raw) > MAX_ID_LENGTH:
        raise QueryError(f"category must be 1 to {MAX_ID_LENGTH} characters")
    return raw


def _exclude(ids: Sequence[str]) -> frozenset[str]:
    if len(ids) > MAX_EXCLUDE:
        raise QueryError(f"exclude takes at most {MAX_EXCLUDE} item ids, got {len(ids)}")
    long = [i for i in ids if len(i) > MAX_ID_LENGTH]
    if long:
        raise QueryError(f"an excluded item id is longer than {MAX_ID_LENGTH} characters: {long[0][:20]}...")
    return frozenset(ids)


def _fields(names: Sequence[str]) -> tuple[str, ...]:
    bad = sorted({name for name in names if name not in FIELDS})
    if bad:
        raise QueryError(f"unknown field(s): {', '.join(bad)}; known: {', '.join(FIELDS)}")
    return tuple(dict.fromkeys(names))  # each once, in the order asked
