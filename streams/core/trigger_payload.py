"""What a promotion trigger carries so a marketing tool can fill a message without looking anything up.

Each item gets its title, category, price, picture and page from the catalog as of the trigger (a
price the shopper saw stays when the catalog has none); cart triggers add the cart's `value` and the
shop's `currency`; a `link` comes from the rules file's template for the trigger's kind. Pure: the
same trigger and catalog give the same payload.
"""

from __future__ import annotations

import string
from typing import Any
from urllib.parse import quote

from streams.core.catalog import Catalog

CART_KINDS = frozenset({"cart_abandonment", "checkout_abandonment"})
ANY_KIND = "*"  # a `trigger_links` entry for every kind without its own
LINK_FIELDS = frozenset({"user_id", "trigger_id", "kind"})
_CATALOG_FIELDS = ("title", "category", "price", "image_url", "url")


def enriched_items(items: list[dict[str, Any]], catalog: Catalog | None) -> list[dict[str, Any]]:
    out = []
    for entry in items:
        item = dict(entry)
        known = catalog.get(entry["item_id"]) if catalog is not None else None
        if known is not None:
            for name in _CATALOG_FIELDS:
                if (value := getattr(known, name)) is not None:
                    item[name] = value
        out.append(item)
    return out


def cart_value(items: list[dict[str, Any]]) -> float:
    """Price x quantity over the items that have a price."""
    return round(sum(item["price"] * item.get("quantity", 1) for item in items if "price" in item), 2)


def link(template: str | None, user_id: str, trigger_id: str, kind: str) -> str | None:
    """The template with its fields filled in, each URL-quoted; None without a template."""
    if template is None:
        return None
    fields = {"user_id": user_id, "trigger_id": trigger_id, "kind": kind}
    return template.format(**{name: quote(value, safe="") for name, value in fields.items()})


def check_link_template(kind: str, template: object) -> None:
    """ValueError unless `template` is a string whose `{fields}` are all known."""
    if not isinstance(template, str) or not template:
        raise ValueError(f"trigger_links.{kind} must be a non-empty string")
    try:
        names = {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}
    except ValueError as exc:
        raise ValueError(f"trigger_links.{kind}: {exc}") from None
    unknown = sorted(names - LINK_FIELDS)
    if unknown:
        known = ", ".join(f"{{{name}}}" for name in sorted(LINK_FIELDS))
        raise ValueError(f"trigger_links.{kind}: unknown field(s) {', '.join(unknown)}; known: {known}")
