"""`GET /items`: the worker's copy of the catalog (streams.live.catalog), a page at a time, with
filters: what a shop simulator's grid needs (titles, categories, prices, stock)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aiohttp import web as aioweb

from streams.core.catalog import CatalogItem

if TYPE_CHECKING:
    from streams.live.app import Worker

MAX_LIMIT = 200
DEFAULT_LIMIT = 24
MAX_QUERY_CHARS = 100
PARAMETERS = ("offset", "limit", "category", "q", "in_stock")


class CatalogQueryError(Exception):
    """A parameter the listing cannot take (400, with this message)."""


@dataclass(frozen=True, slots=True)
class CatalogQuery:
    offset: int = 0
    limit: int = DEFAULT_LIMIT
    category: str | None = None
    text: str | None = None  # case-insensitive, in the title or the item id
    in_stock: bool | None = None


def _integer(name: str, raw: str, low: int, high: int) -> int:
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise CatalogQueryError(f"{name} must be from {low} to {high}, got {raw!r}")
    return int(raw)


def parse_catalog_query(params: Mapping[str, str]) -> CatalogQuery:
    unknown = sorted(set(params) - set(PARAMETERS))
    if unknown:
        raise CatalogQueryError(f"unknown parameter {unknown[0]!r}; the listing takes {list(PARAMETERS)}")
    in_stock = params.get("in_stock")
    if in_stock not in (None, "true", "false"):
        raise CatalogQueryError(f"in_stock must be true or false, got {in_stock!r}")
    text = params.get("q", "").strip()
    if len(text) > MAX_QUERY_CHARS:
        raise CatalogQueryError(f"q is at most {MAX_QUERY_CHARS} characters")
    return CatalogQuery(
        offset=_integer("offset", params.get("offset", "0"), 0, 10**9),
        limit=_integer("limit", params.get("limit", str(DEFAULT_LIMIT)), 1, MAX_LIMIT),
        category=params.get("category") or None,
        text=text.lower() or None,
        in_stock=None if in_stock is None else in_stock == "true",
    )


def _matches(item: CatalogItem, query: CatalogQuery) -> bool:
    if query.category is not None and item.category != query.category:
        return False
    if query.in_stock is not None and item.in_stock is not query.in_stock:
        return False
    return query.text is None or query.text in f"{item.title or ''} {item.item_id}".lower()


def _order(item: CatalogItem) -> tuple[str, int, str]:
    # sku-2 before sku-10: a trailing number sorts as a number.
    head, _, tail = item.item_id.rpartition("-")
    return (head, int(tail), "") if tail.isdigit() and head else (item.item_id, -1, item.item_id)


def list_catalog(items: Mapping[str, CatalogItem], query: CatalogQuery) -> dict[str, Any]:
    """One page of the catalog's items matching the query, in item-id order, with how many match and
    the categories of the whole catalog (with their item counts) for a filter."""
    snapshot = list(items.values())  # the processing loop may add items meanwhile
    matching = sorted((item for item in snapshot if _matches(item, query)), key=_order)
    categories = Counter(item.category for item in snapshot if item.category)
    return {
        "total": len(matching),
        "offset": query.offset,
        "limit": query.limit,
        "items": [item.to_dict() for item in matching[query.offset : query.offset + query.limit]],
        "categories": dict(sorted(categories.items())),
    }


def register_catalog_views(worker: Worker) -> None:
    @worker.app.page("/items")
    async def catalog_items(web: Any, request: Any) -> Any:
        try:
            query = parse_catalog_query(request.query)
        except CatalogQueryError as exc:
            return aioweb.json_response({"error": str(exc)}, status=400)
        return web.json(list_catalog(worker.catalog.items, query))

    _ = catalog_items
