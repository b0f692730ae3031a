"""Wire format: key = user_id (item_id for catalog) as UTF-8, value = a msgpack map or a JSON object."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping
from typing import Any

import msgpack
import msgspec

from streams.errors import DecodeError, SchemaViolation

CONTENT_TYPE = "content-type"
JSON_CONTENT_TYPE = "application/json"
REPLAY_HEADER = "streams-replay"  # set by `streams replay`: derived outputs say replay=true
# A single event is a few hundred bytes; a cap keeps a hostile producer from making the worker
# allocate without bound before the schema's own length limits are even checked. This is the
# default of STREAMS_MAX_MESSAGE_BYTES (Settings.max_message_bytes).
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


def looks_like_json(raw: bytes) -> bool:
    """A value whose first byte after JSON whitespace is `{` is a JSON object whatever its headers say:
    msgpack never starts a map that way (`{` and whitespace are single-byte integers there), so a
    tracker that sends plain JSON without a content-type header is read, not refused."""
    return raw.lstrip(b" \t\r\n")[:1] == b"{"


# Every output message is encoded here: msgspec's encoder writes the bytes msgpack writes
# (`packb(use_bin_type=True)`, tests/test_codec.py) in about two thirds of the time.
_encoder = msgspec.msgpack.Encoder()


def encode_value(value: Mapping[str, Any]) -> bytes:
    return _encoder.encode(value)


def decode_value(
    raw: bytes | None, headers: Headers = None, max_bytes: int = MAX_VALUE_BYTES
) -> dict[str, Any]:
    """Decode one message value into a map, or raise BadMessage with a stable code.

    A value over `max_bytes` is refused before any decoding. NaN and infinity (msgpack floats, or
    JSON's non-standard literals) are refused wherever they are: JSON Schema's `minimum`/`maximum`
    let NaN through, and one NaN price would poison every comparison made with it afterwards.
    """
    if not raw:
        raise DecodeError("empty_value", "message value is empty")
    if len(raw) > max_bytes:
        raise DecodeError("value_too_large", f"message value is {len(raw)} bytes, limit {max_bytes}")
    as_json = is_json(headers) or looks_like_json(raw)
    if as_json:
        value = _decode_json(raw)
    else:
        try:
            value = msgpack.unpackb(raw, raw=False, strict_map_key=True)
        except Exception as exc:  # msgpack raises a zoo of types (ExtraData, FormatError, ValueError...)
            raise DecodeError(
                "bad_msgpack", f"value is not valid msgpack: {type(exc).__name__}: {exc}"
            ) from None
    if not isinstance(value, dict):
        raise DecodeError("not_a_map", f"value must be a map, got {type(value).__name__}")
    if as_json or _may_hold_non_finite(raw):
        _check_scalars(value, check_text=as_json)
    return value


# msgpack writes every float as a marker byte (0xca: 32 bits, 0xcb: 64) and then its IEEE 754 bits,
# big-endian: an infinity or NaN (every exponent bit set) starts 0x7f or 0xff. A value with no such
# pair of bytes (most: a click's price is its only float) holds no NaN or infinity, and the walk of
# `_check_scalars`, a Python loop over every field, is skipped; a pair anywhere else (inside a string,
# say) only costs the walk.
_MAY_BE_NON_FINITE = re.compile(rb"[\xca\xcb][\x7f\xff]")


def _may_hold_non_finite(raw: bytes) -> bool:
    return _MAY_BE_NON_FINITE.search(raw) is not None


def _decode_json(raw: bytes) -> Any:
    def no_constants(name: str) -> None:
        raise ValueError(f"{name} is not a JSON number")

    try:
        return json.loads(raw, parse_constant=no_constants)
    except RecursionError:
        # msgpack stops at 1024 levels by itself (StackError); the json module recurses in C.
        raise DecodeError("bad_json", "JSON value nests too deeply") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise DecodeError("bad_json", f"value is not valid JSON: {exc}") from None


def _check_scalars(value: dict[str, Any], check_text: bool) -> None:
    """Refuse NaN/infinity anywhere, and (for JSON) strings that are not valid Unicode: a `\\ud800`
    escape decodes to a lone surrogate, which no UTF-8 encoder (msgpack, Kafka keys) accepts later.
    Iterative, so a deeply nested value cannot exhaust the stack."""
    pending: list[tuple[str, dict[Any, Any] | list[Any]]] = [("data", value)]
    while pending:
        path, container = pending.pop()
        children = container.items() if isinstance(container, dict) else enumerate(container)
        for key, child in children:
            if check_text and isinstance(key, str) and not _is_unicode(key):
                raise DecodeError("bad_json", f"a key in {path} is not valid Unicode (lone surrogate)")
            if isinstance(child, float):
                if not math.isfinite(child):
                    where = _child_path(path, key)
                    raise SchemaViolation("out_of_range", f"{where} is {child}, not a finite number", where)
            elif isinstance(child, dict | list):
                pending.append((_child_path(path, key), child))
            elif check_text and isinstance(child, str) and not _is_unicode(child):
                where = _child_path(path, key)
                raise DecodeError("bad_json", f"{where} is not valid Unicode (lone surrogate)")


def _child_path(path: str, key: object) -> str:
    return f"{path}[{key}]" if isinstance(key, int) else f"{path}.{key}"


def _is_unicode(text: str) -> bool:
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def encode_key(key: str | None) -> bytes | None:
    return None if key is None else key.encode("utf-8")


def decode_key(raw: bytes | None) -> str | None:
    if raw is None:
        return None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise DecodeError("bad_key", "message key is not UTF-8") from None
