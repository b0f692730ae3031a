"""Catalog facts the rules and triggers need: price, stock, category, and what a message shows of an
item (title, picture, page). The live worker keeps them in a global table."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from streams.core.events import as_int


@dataclass(frozen=True, slots=True)
class CatalogItem:
    item_id: str
    ts: int
    price: float | None = None
    in_stock: bool | None = None
    category: str | None = None
    title: str | None = None
    image_url: str | None = None
    url: str | None = None

    @classmethod
    def from_dict(cls, value: dict[str, Any]) -> CatalogItem:
        return cls(
            item_id=value["item_id"],
            ts=as_int(value["ts"]),
            price=value.get("price"),
            in_stock=value.get("in_stock"),
            category=value.get("category"),
            title=value.get("title"),
            image_url=value.get("image_url"),
            url=value.get("url"),
        )

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"item_id": self.item_id, "ts": self.ts}
        for name in ("price", "in_stock", "category", "title", "image_url", "url"):
            if (value := getattr(self, name)) is not None:
                out[name] = value
        return out


# Any mapping works: a dict offline, a Faust GlobalTable view live.
Catalog = Mapping[str, CatalogItem]
