"""Hostile messages for fault tests and the soak: each one a valid click with one thing wrong, so the
worker must refuse exactly that message (to `dead-letters`, with a reason) and keep going."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator, Sequence

import msgpack

from streams.logs import LogRecord

KINDS = 8  # the shapes `malformed` builds, chosen by n % KINDS


def malformed(rng: random.Random, n: int, valid: LogRecord) -> LogRecord:
    """The n-th hostile shape, built from the valid click `valid` (its key and time)."""
    assert valid.value is not None
    value = dict(valid.value, event_id=f"bad-{n}")
    key = valid.key
    kind = n % KINDS
    if kind == 0:
        return LogRecord(
            "clicks", key, valid.ts, value_bytes=b"\xc1" + rng.randbytes(12)
        )  # never valid msgpack
    if kind == 1:
        value["ts"] = "yesterday"
    elif kind == 2:
        del value["user_id"]
    elif kind == 3:
        value["type"] = "teleport"
    elif kind == 4:
        value["item_id"] = "x" * 50_000
    elif kind == 5:
        cut = json.dumps(value).encode()[:-1]  # JSON (read as such without a header) cut short
        return LogRecord("clicks", key, valid.ts, value_bytes=cut)
    elif kind == 6:
        return LogRecord("clicks", key, valid.ts, value_bytes=b"")
    else:
        value["quantity"] = -3
    return LogRecord("clicks", key, valid.ts, value_bytes=msgpack.packb(value))


def with_poison(records: Sequence[LogRecord], every: int, seed: int) -> Iterator[LogRecord]:
    """`records` with a hostile message after every `every`-th click (same key and time as that click)."""
    rng = random.Random(seed)
    clicks = 0
    for record in records:
        yield record
        if record.topic == "clicks":
            clicks += 1
            if clicks % every == 0:
                yield malformed(rng, clicks // every, record)


def is_poison(record: LogRecord) -> bool:
    return record.value_bytes is not None
