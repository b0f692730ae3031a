"""Wire format: key = user_id (item_id for catalog) as UTF-8, value = a msgpack map (or JSON by header)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

import msgpack

from streams.errors import DecodeError

CONTENT_TYPE = "content-type"
JSON_CONTENT_TYPE = "application/json"
REPLAY_HEADER = "streams-replay"  # set by `streams replay`: derived outputs say replay=true
# A single event is a few hundred bytes; a cap keeps a hostile producer from making the worker
# allocate without bound before the schema's own length limits are even checked.
MAX_VALUE_BYTES = 256 * 1024

Headers = Iterable[tuple[str, bytes]] | Mapping[str, bytes] | None


def header_value(headers: Headers, name: str) -> bytes | None:
    if not headers:
        return None
    items = headers.items() if isinstance(headers, Mapping) else headers
    for key, value in items:
        if key.lower() == name:
            return value if isinstance(value, bytes) else str(value).encode()
    return None


def is_json(headers: Headers) -> bool:
    value = header_value(headers, CONTENT_TYPE)
    return value is not None and value.split(b";")[0].strip().lower() == JSON_CONTENT_TYPE.encode()


def encode_value(value: Mapping[str, Any]) -> bytes:
    return msgpack.packb(value, use_bin_type=True)


def decode_value(raw: bytes | None, headers: Headers = None) -> dict[str, Any]:
    """Decode one message value into a map, or raise DecodeError with a stable code."""
    if not raw:
        raise DecodeError("empty_value", "message value is empty")
    if len(raw) > MAX_VALUE_BYTES:
        raise DecodeError("value_too_large", f"message value is {len(raw)} bytes, limit {MAX_VALUE_BYTES}")
    if is_json(headers):
        try:
            value = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            raise DecodeError("bad_json", f"value declared {JSON_CONTENT_TYPE} is not JSON: {exc}") from None
    else:
        try:
            value = msgpack.unpackb(raw, raw=False, strict_map_key=True)
        except Exception as exc:  # msgpack raises a zoo of types (ExtraData, FormatError, ValueError...)
            if raw[:1] in (b"{", b"["):
                raise DecodeError(
                    "json_without_content_type",
                    f"value looks like JSON but has no '{CONTENT_TYPE}: {JSON_CONTENT_TYPE}' header",
                ) from None
            raise DecodeError(
                "bad_msgpack", f"value is not valid msgpack: {type(exc).__name__}: {exc}"
            ) from None
    if not isinstance(value, dict):
        raise DecodeError("not_a_map", f"value must be a map, got {type(value).__name__}")
    return value


def encode_key(key: str | None) -> bytes | None:
    return None if key is None else key.encode("utf-8")


def decode_key(raw: bytes | None) -> str | None:
    if raw is None:
        return None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise DecodeError("bad_key", "message key is not UTF-8") from None
