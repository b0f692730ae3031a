"""JSON Schemas in `schemas/` are the single source of truth for event shapes; this compiles them once.

Every input event is validated, so validation is on the per-event path. A valid value is accepted
by jsonschema-rs (compiled Rust, a few microseconds); only a value it refuses goes through
fastjsonschema, whose exception names the violated rule and field that a dead letter reports. Both
compile the same schema file, and the slower one has the last word: a value jsonschema-rs refuses
but fastjsonschema accepts is still accepted.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import fastjsonschema
import jsonschema_rs

from streams.core.events import SCHEMA_VERSION
from streams.errors import SchemaViolation

__all__ = ["EVENT_KINDS", "SCHEMA_VERSION", "load_schema", "validate"]
EVENT_KINDS = (
    "click",
    "order",
    "catalog_item",
    "recommendation",
    "promotion_trigger",
    "audience_segment",
    "dead_letter",
    "demand",
    "demand_forecast",
)

# fastjsonschema names the violated keyword; these codes are what dead-letter consumers filter on.
_RULE_CODES = {
    "required": "missing_field",
    "type": "wrong_type",
    "enum": "unknown_value",
    "const": "unknown_value",
    "maxLength": "too_long",
    "minLength": "too_short",
    "maxItems": "too_many_items",
    "minItems": "too_few_items",
    "minimum": "out_of_range",
    "maximum": "out_of_range",
    "pattern": "bad_format",
}


def schemas_dir() -> Path:
    override = os.environ.get("STREAMS_SCHEMAS_DIR")
    return Path(override) if override else Path(__file__).resolve().parent.parent / "schemas"


@cache
def load_schema(kind: str) -> dict[str, Any]:
    if kind not in EVENT_KINDS:
        raise KeyError(f"unknown event kind {kind!r}; known: {', '.join(EVENT_KINDS)}")
    with open(schemas_dir() / f"{kind}.v{SCHEMA_VERSION}.json", encoding="utf-8") as f:
        return json.load(f)


@cache
def _validator(kind: str) -> Callable[[Any], Any]:
    return fastjsonschema.compile(load_schema(kind))


@cache
def _accepts(kind: str) -> Callable[[Any], bool]:
    return jsonschema_rs.validator_for(load_schema(kind)).is_valid


def validate(kind: str, value: Any) -> dict[str, Any]:
    """Return `value` if it is a valid `kind` event, else raise SchemaViolation naming the field."""
    try:
        if _accepts(kind)(value):
            return value
    except Exception:  # a value Rust cannot take (a lone surrogate, say) is judged below
        pass
    try:
        _validator(kind)(value)
    except fastjsonschema.JsonSchemaValueException as exc:
        code = _RULE_CODES.get(exc.rule or "", "invalid")
        field = exc.name
        if exc.rule == "required" and isinstance(exc.value, dict):
            missing = [name for name in exc.rule_definition or () if name not in exc.value]
            if missing:
                field = f"{exc.name}.{missing[0]}"
                raise SchemaViolation(code, f"{kind}: {field} is required", field=field) from None
        raise SchemaViolation(code, f"{kind}: {exc.message}", field=field) from None
    return value
