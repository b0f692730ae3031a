"""Business-rule settings: what the model's output may show and when a shopper may be contacted.

Loaded from a TOML or JSON file (`--rules FILE`); every field has a default that works as is.
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from streams.core.demand import WindowSpec

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
    # policy
    require_opt_in: bool = False
    cap_window_ms: int = DAY
    cap_per_kind: int = 1
    cap_overall: int = 3
    trigger_ttl_ms: int = DAY
    allowed_lateness_ms: int = 0
    # demand signals: [size ms, hop ms, scopes beyond the total] per window kind (hop == size:
    # tumbling); [] turns them off
    demand_windows: tuple[tuple[int, int, tuple[str, ...]], ...] = (
        (HOUR, HOUR, ("item", "category")),
        (HOUR, 15 * MINUTE, ("category",)),
    )
    demand_lateness_ms: int = 5 * MINUTE  # a window is emitted when the watermark passes end + this

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
        return {f.name: getattr(self, f.name) for f in fields(self)}
