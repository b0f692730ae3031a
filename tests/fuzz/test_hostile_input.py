"""Hostile input never crashes ingress or the core: it is processed, or refused with a reason.

Every test feeds records through `Pipeline.check_record` (tests/fuzz/target.py), which asserts
the whole contract: a documented dead-letter code and an encodable dead letter for a refusal;
bounded, round-tripping state and schema-valid outputs for an accepted event.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import msgpack
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from streams.codec import encode_value
from streams.core.events import CLICKS, ORDERS
from streams.schemas import load_schema
from tests.fuzz.target import Pipeline

REPO = Path(__file__).resolve().parents[2]
JSON = (("content-type", b"application/json"),)
MAX_TS = 9_999_999_999_999
relaxed = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

CLICK = {
    "event_id": "e1",
    "user_id": "u1",
    "type": "add_to_cart",
    "item_id": "sku-3",
    "ts": 1_700_000_000_000,
}
ORDER = {
    "event_id": "o1",
    "user_id": "u1",
    "order_id": "ord-1",
    "status": "placed",
    "ts": 1_700_000_060_000,
    "items": [{"item_id": "sku-3", "quantity": 1, "price": 9.5}],
}
BASES = {CLICKS: CLICK, ORDERS: ORDER}

# Any code point, lone surrogates included (JSON can carry them as escapes, msgpack cannot).
odd_text = st.text(alphabet=st.characters(codec=None), max_size=40) | st.sampled_from(
    ["", "\x00", "\u202e", "\ufeff", "e\u0301", "🛒" * 40, "\U0010ffff", "a" * 129]
)
# One surrogate between ordinary letters: never half of a valid pair.
lone_surrogates = st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF).map(lambda c: f"a{c}b")
numbers = (
    st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.sampled_from([0, -1, MAX_TS, MAX_TS + 1, 2**53 + 1, 1.7e12, 1e300, -0.0])
)
scalars = st.none() | st.booleans() | numbers | odd_text | st.binary(max_size=40)
anything = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(odd_text, inner, max_size=4)
)


def encode(value: dict[str, Any], as_json: bool) -> bytes | None:
    """The value as a producer would send it, or None if that wire format cannot carry it."""
    try:
        if as_json:
            return json.dumps(value, default=lambda b: b.hex()).encode()  # NaN -> NaN, \ud800 escaped
        return msgpack.packb(value, use_bin_type=True)
    except (OverflowError, TypeError, ValueError):
        return None  # e.g. an int beyond 64 bits in msgpack, a non-str key in JSON


def has_non_finite(value: Any) -> bool:
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, dict):
        return any(has_non_finite(v) for v in value.values())
    if isinstance(value, list):
        return any(has_non_finite(v) for v in value)
    return False


@relaxed
@given(
    topic=st.sampled_from([CLICKS, ORDERS]),
    key=st.none() | st.binary(max_size=20),
    value=st.none() | st.binary(max_size=2000),
    as_json=st.booleans(),
)
def test_random_bytes_are_refused_with_a_reason(topic: str, key: bytes, value: bytes, as_json: bool) -> None:
    Pipeline().check_record(topic, key, value, JSON if as_json else ())


@relaxed
@given(
    topic=st.sampled_from([CLICKS, ORDERS]),
    changes=st.dictionaries(
        st.sampled_from(["event_id", "user_id", "type", "ts", "item_id", "quantity", "price", "items"]),
        anything,
        max_size=3,
    ),
    unknown=st.dictionaries(
        odd_text.filter(lambda k: k not in CLICK and k not in ORDER), anything, max_size=3
    ),
    as_json=st.booleans(),
)
def test_mutated_events_are_processed_or_refused(
    topic: str, changes: dict[str, Any], unknown: dict[str, Any], as_json: bool
) -> None:
    value = {**BASES[topic], **changes, **unknown}
    raw = encode(value, as_json)
    if raw is None:
        return
    key = value["user_id"].encode("utf-8", "surrogatepass") if isinstance(value["user_id"], str) else b"u1"
    refused = Pipeline().check_record(topic, key, raw, JSON if as_json else ())
    if has_non_finite(value):
        assert refused is not None and refused.code in ("out_of_range", "bad_json")


@relaxed
@given(topic=st.sampled_from([CLICKS, ORDERS]), extra=st.dictionaries(odd_text, anything, max_size=5))
def test_unknown_fields_are_ignored(topic: str, extra: dict[str, Any]) -> None:
    known = load_schema("click" if topic == CLICKS else "order")["properties"]
    extra = {k: v for k, v in extra.items() if k not in known and not has_non_finite(v)}
    raw = encode({**BASES[topic], **extra}, as_json=False)
    assume(raw is not None)  # msgpack cannot carry a lone surrogate or a 65-bit int at all
    assert Pipeline().check_record(topic, b"u1", raw) is None


@relaxed
@given(ts=numbers, as_json=st.booleans())
def test_absurd_timestamps_are_refused_and_plausible_ones_applied(ts: int | float, as_json: bool) -> None:
    raw = encode({**CLICK, "ts": ts}, as_json)
    if raw is None:
        return
    refused = Pipeline().check_record(CLICKS, b"u1", raw, JSON if as_json else ())
    integral = (isinstance(ts, int) and not isinstance(ts, bool)) or (
        isinstance(ts, float) and ts.is_integer()
    )
    assert (refused is None) == (integral and 0 <= ts <= MAX_TS)


@relaxed
@given(bad=lone_surrogates, field=st.sampled_from(["item_id", "event_id", "category", "query"]))
def test_lone_surrogates_in_json_are_refused(bad: str, field: str) -> None:
    raw = json.dumps({**CLICK, field: bad}).encode()  # ensure_ascii: "\ud800" escapes, valid JSON
    refused = Pipeline().check_record(CLICKS, b"u1", raw, JSON)
    assert refused is not None and refused.code == "bad_json"


@relaxed
@given(key=st.none() | st.binary(max_size=300) | odd_text.map(lambda s: s.encode("utf-8", "surrogatepass")))
def test_key_must_equal_user_id(key: bytes | None) -> None:
    refused = Pipeline().check_record(CLICKS, key, encode_value(CLICK))
    assert (refused is None) == (key == b"u1")
    if refused is not None:
        assert refused.code in ("key_mismatch", "bad_key")


@pytest.mark.parametrize("as_json", [False, True])
@pytest.mark.parametrize("depth", [1, 100, 1023, 1100, 50_000])
def test_deep_nesting(depth: int, as_json: bool) -> None:
    if as_json:
        raw = json.dumps(CLICK)[:-1].encode() + b', "x": ' + b"[" * depth + b"]" * depth + b"}"
    else:
        body = msgpack.packb(CLICK)
        raw = bytes([body[0] + 1]) + body[1:] + msgpack.packb("x") + b"\x91" * depth + b"\xc0"
    refused = Pipeline().check_record(CLICKS, b"u1", raw, JSON if as_json else ())
    # msgpack's unpacker stops at 1024 levels; the json module at Python's recursion limit.
    assert refused is None or refused.code in ("bad_msgpack", "bad_json")
    if depth <= 100:
        assert refused is None


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"user_id": "u" * 1_000}, "too_long"),
        ({"query": "q" * 200_000, "type": "search"}, "too_long"),
        ({"items": [{"item_id": f"i{n}", "quantity": 1} for n in range(5_000)]}, "too_many_items"),
        ({"x": list(range(100_000, 200_000))}, "value_too_large"),
    ],
)
def test_huge_strings_and_arrays(change: dict[str, Any], code: str) -> None:
    topic = ORDERS if "items" in change else CLICKS
    refused = Pipeline().check_record(topic, b"u1", encode_value({**BASES[topic], **change}))
    assert refused is not None and refused.code == code


def test_the_size_cap_refuses_before_decoding(monkeypatch: pytest.MonkeyPatch) -> None:
    def never(*args: object, **kwargs: object) -> None:
        raise AssertionError("an oversized value must not be decoded")

    monkeypatch.setattr(msgpack, "unpackb", never)
    raw = encode_value({**CLICK, "pad": "x" * 2_000})
    refused = Pipeline(max_bytes=1_000).check_record(CLICKS, b"u1", raw)
    assert refused is not None and refused.code == "value_too_large"


def test_atheris_bounded_run(tmp_path: Path) -> None:
    """A real coverage-guided run of the fuzz target, from the seeds, for a fixed number of inputs."""
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    runs = 30_000
    done = subprocess.run(
        [sys.executable, str(REPO / "tests/fuzz/fuzz_ingest.py"), str(corpus), f"-runs={runs}", "-seed=7"],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"Done {runs} runs" in done.stderr
    assert not list(tmp_path.glob("crash-*"))


ITEM = {"item_id": "sku-3", "ts": 1_700_000_000_000, "price": 10.0, "in_stock": True}
catalog_fields = st.sampled_from(["item_id", "ts", "price", "in_stock", "title"])


@relaxed
@given(
    changes=st.lists(st.dictionaries(catalog_fields, anything, max_size=2), min_size=1, max_size=5),
    raw=st.lists(st.binary(max_size=60), max_size=3),
)
def test_the_catalog_reads_hostile_entries_alike_live_and_offline(
    changes: list[dict[str, Any]], raw: list[bytes]
) -> None:
    """Offline reads a log's catalog maps, the worker the bytes `streams replay` sends for them."""
    from streams.core.processor import Processor
    from streams.live.catalog import CatalogFollower
    from streams.logs import LogRecord
    from streams.offline.engine import OfflineEngine

    records = [LogRecord("catalog", "k", 0, value={**ITEM, **c}) for c in changes]
    records += [LogRecord("catalog", "k", 0, value_bytes=b) for b in raw]
    follower = CatalogFollower({}, "catalog")
    engine = OfflineEngine(Processor(None, catalog={}))
    for record in records:
        wire = encode({**ITEM, **record.value}, as_json=False) if record.value else record.value_bytes
        if wire is None:
            continue  # a map msgpack cannot carry never reaches the topic
        follower._apply(wire)
        engine.feed(record)
    assert engine.processor.catalog == follower.items
    assert all(type(i.ts) is int and math.isfinite(i.price or 0.0) for i in follower.items.values())
