"""Business-rule settings: what the model's output may show and when a shopper may be contacted.

Loaded from a TOML or JSON file (`--rules FILE`); every field has a default that works as is.
"""

from __future__ import annotations

import json
import re
import tomllib
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from streams.core.demand import WindowSpec
from streams.core.trigger_payload import ANY_KIND, check_link_template

MINUTE = 60_000
HOUR = 60 * MINUTE
DAY = 24 * HOUR

TRIGGER_KINDS = (
    "cart_abandonment",
    "browse_abandonment",
    "high_intent",
    "price_drop",
    "back_in_stock",
    "win_back",
    "checkout_abandonment",
)
CURRENCY_PATTERN = re.compile(r"^[A-Z]{3}$")
SEGMENT_ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")
MAX_SEGMENTS = 32


@dataclass(frozen=True, slots=True)
class Segment:
    """An audience: shoppers for whom the `when` expression holds (names: streams/core/segments.py)."""

    id: str
    when: str
    description: str = ""

    @classmethod
    def from_mapping(cls, raw: dict[str, Any]) -> Segment:
        unknown = sorted(set(raw) - {"id", "when", "description"})
        if unknown:
            known = "description, id, when"
            raise ValueError(f"unknown segment setting(s): {', '.join(unknown)}; known: {known}")
        if not isinstance(raw.get("id"), str) or not SEGMENT_ID_PATTERN.match(raw["id"]):
            raise ValueError(f"segment id {raw.get('id')!r} must match {SEGMENT_ID_PATTERN.pattern}")
        if not isinstance(raw.get("when"), str) or not raw["when"].strip():
            raise ValueError(f"segment {raw['id']}: `when` must be a non-empty expression")
        return cls(raw["id"], raw["when"], str(raw.get("description", "")))


# Shipped audiences: what campaign and ad platforms commonly target. Replace them with `[[segments]]`
# tables in the rules file (an empty list `segments = []` turns segments off).
DEFAULT_SEGMENTS = (
    Segment("high_intent", "purchase_intent >= 0.5 and cart_items > 0", "likely to buy soon, cart not empty"),
    Segment("cart_over_100", "cart_value > 100", "cart worth more than 100"),
    Segment(
        "electronics_intender",
        'top_category == "electronics" and purchase_intent >= 0.3',
        "high intent in category electronics",
    ),
    Segment("new_shopper", 'lifecycle == "new" and orders == 0', "first seen recently, no order yet"),
    Segment("frequent_buyer", "orders >= 3", "three or more orders"),
    Segment(
        "at_risk_frequent_buyer",
        'lifecycle in ("at_risk", "lapsed") and orders >= 3',
        "frequent buyer gone quiet",
    ),
    Segment("premium_shopper", 'price_band == "premium"', "typically looks at premium-priced items"),
)


@dataclass(frozen=True, slots=True)
class RulesConfig:
    # recommendations
    top_n: int = 10
    exclude_purchased: bool = True
    exclude_in_cart: bool = True
    exclude_out_of_stock: bool = True
    trending_half_life_ms: int = HOUR
    boosts: dict[str, float] = field(default_factory=dict)  # category -> score multiplier
    # triggers
    enabled_triggers: tuple[str, ...] = TRIGGER_KINDS
    cart_timeout_ms: int = 30 * MINUTE
    browse_timeout_ms: int = 30 * MINUTE
    browse_item_views: int = 3
    browse_category_views: int = 5
    high_intent_threshold: float = 0.8
    price_drop_min_fraction: float = 0.05
    win_back_after_ms: int = 30 * DAY
    checkout_timeout_ms: int = 30 * MINUTE  # checkout started, no order within this: abandoned
    # what triggers tell marketing tools: the shop's currency (ISO 4217) for cart values, and a link
    # per trigger kind ("*": any other kind) with {user_id}, {trigger_id} and {kind} filled in
    currency: str = "EUR"
    trigger_links: dict[str, str] = field(default_factory=dict)
    # policy
    require_opt_in: bool = False
    cap_window_ms: int = DAY
    cap_per_kind: int = 1
    cap_overall: int = 3
    trigger_ttl_ms: int = DAY
    allowed_lateness_ms: int = 0
    # profiles and audience segments
    price_band_edges: tuple[float, ...] = (20.0, 60.0, 150.0)  # budget < 20 <= mid < 60 <= upper < 150
    lifecycle_new_ms: int = 14 * DAY
    lifecycle_at_risk_ms: int = 30 * DAY
    lifecycle_lapsed_ms: int = 90 * DAY
    segments: tuple[Segment, ...] = DEFAULT_SEGMENTS
    # demand signals: [size ms, hop ms, scopes beyond the total] per window kind (hop == size:
    # tumbling); [] turns them off
    demand_windows: tuple[tuple[int, int, tuple[str, ...]], ...] = (
        (HOUR, HOUR, ("item", "category")),
        (HOUR, 15 * MINUTE, ("category",)),
    )
    demand_lateness_ms: int = 5 * MINUTE  # a window is emitted when the watermark passes end + this
    # attribution: an add-to-cart or order counts for a click on a recommended item this long before
    attribution_window_ms: int = DAY

    def __post_init__(self) -> None:
        # `profile.price_band` finds a price's band by bisection over the edges.
        edges = self.price_band_edges
        if len(edges) != 3 or list(edges) != sorted(edges):
            raise ValueError("price_band_edges must be three ascending prices (budget, mid, upper)")

    @classmethod
    def from_mapping(cls, raw: dict[str, Any]) -> RulesConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise ValueError(
                f"unknown rules setting(s): {', '.join(unknown)}; known: {', '.join(sorted(known))}"
            )
        values = dict(raw)
        if "enabled_triggers" in values:
            values["enabled_triggers"] = tuple(values["enabled_triggers"])
            bad = sorted(set(values["enabled_triggers"]) - set(TRIGGER_KINDS))
            if bad:
                raise ValueError(f"unknown trigger kind(s): {', '.join(bad)}")
        if "trigger_links" in values:
            values["trigger_links"] = dict(values["trigger_links"])
            for kind, template in values["trigger_links"].items():
                if kind != ANY_KIND and kind not in TRIGGER_KINDS:
                    raise ValueError(f"trigger_links: unknown trigger kind {kind!r}")
                check_link_template(kind, template)
        if "currency" in values and not CURRENCY_PATTERN.match(str(values["currency"])):
            raise ValueError(f"currency {values['currency']!r} must be an ISO 4217 code such as EUR")
        if "price_band_edges" in values:
            values["price_band_edges"] = tuple(float(v) for v in values["price_band_edges"])
        if "segments" in values:
            values["segments"] = tuple(Segment.from_mapping(dict(s)) for s in values["segments"])
            ids = [s.id for s in values["segments"]]
            if len(ids) != len(set(ids)):
                raise ValueError(f"segment ids must be unique: {', '.join(sorted(ids))}")
            if len(ids) > MAX_SEGMENTS:
                raise ValueError(f"at most {MAX_SEGMENTS} segments (state stays bounded), got {len(ids)}")
        if "demand_windows" in values:
            values["demand_windows"] = tuple(
                (int(size), int(hop), tuple(scopes)) for size, hop, scopes in values["demand_windows"]
            )
        config = cls(**values)
        config.window_specs()  # fails early on a bad window
        return config

    @classmethod
    def load(cls, path: str | Path | None) -> RulesConfig:
        if path is None:
            return cls()
        text = Path(path).read_text(encoding="utf-8")
        raw = json.loads(text) if str(path).endswith(".json") else tomllib.loads(text)
        return cls.from_mapping(raw.get("rules", raw))

    def window_specs(self) -> tuple[WindowSpec, ...]:
        return tuple(WindowSpec(size, hop, scopes) for size, hop, scopes in self.demand_windows)

    def as_dict(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["segments"] = [asdict(s) for s in self.segments]
        return out
