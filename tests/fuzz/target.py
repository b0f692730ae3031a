"""Fuzz target: one Kafka record through decoding, validation and the core, as a worker handles it.

The contract checked for every input, whatever its bytes:
- parsing gives a typed event or raises BadMessage with a documented code, never anything else;
- a refused record makes a dead letter that encodes to msgpack and stays within the size cap;
- an accepted event goes through the processor, its new state survives the table's encode/decode,
  and every output encodes and satisfies its own JSON Schema.

Run it under atheris with tests/fuzz/fuzz_ingest.py. tests/fuzz/test_hostile_input.py runs that
for a bounded number of inputs in the test suite, and drives `Pipeline.check_record` with
hypothesis strategies for the shapes random bytes rarely reach.
"""

from __future__ import annotations

from collections.abc import Sequence

from streams.codec import MAX_VALUE_BYTES, encode_value
from streams.core.config import RulesConfig
from streams.core.events import CLICKS, ORDERS, Position
from streams.core.processor import Incoming, Processor
from streams.core.state import UserState
from streams.core.timers import TimerIndex
from streams.deadletters import dead_letter_value
from streams.errors import BadMessage
from streams.ingest import parse_user_event
from streams.live.tables import decode_state, encode_state
from streams.schemas import validate
from tests.core.bounds import assert_bounded
from tests.core.fakes import FakeRecommender

# Every code a dead letter may carry (docs/topics.md, "Dead letters").
DEAD_LETTER_CODES = frozenset(
    {
        "empty_value",
        "value_too_large",
        "bad_msgpack",
        "bad_json",
        "not_a_map",
        "bad_key",
        "missing_field",
        "wrong_type",
        "unknown_value",
        "too_long",
        "too_short",
        "too_many_items",
        "too_few_items",
        "out_of_range",
        "bad_format",
        "key_mismatch",
    }
)
OUTPUT_KINDS = {
    "recommendations": "recommendation",
    "promotion-triggers": "promotion_trigger",
    "audience-segments": "audience_segment",
    "demand": "demand",
}
DEAD_LETTER_OVERHEAD = 4096  # bytes a dead letter adds around the kept key and value, at most


class Pipeline:
    """One worker's partition 0: a processor, its states and timers, fed one record at a time."""

    def __init__(self, max_bytes: int = MAX_VALUE_BYTES) -> None:
        self.max_bytes = max_bytes
        self.processor = Processor(FakeRecommender(), RulesConfig(), catalog={})
        self.states: dict[str, UserState] = {}
        self.partitions: dict = {}
        self.timers = TimerIndex()
        self.offset = 0

    def check_record(
        self, topic: str, key: bytes | None, value: bytes | None, headers: Sequence[tuple[str, bytes]] = ()
    ) -> BadMessage | None:
        """Feed one record; return the refusal (a dead letter) or None if it was processed."""
        self.offset += 1
        try:
            event = parse_user_event(topic, key, value, list(headers), self.max_bytes)
        except BadMessage as refused:
            assert refused.code in DEAD_LETTER_CODES, refused.code
            letter = dead_letter_value(topic, 0, self.offset, key, value, refused, 0, self.max_bytes)
            assert len(encode_value(letter)) <= self.max_bytes + DEAD_LETTER_OVERHEAD
            return refused
        incoming = Incoming(event, 0, Position(topic, 0, self.offset))
        result = self.processor.process_batch([incoming], self.states.get, self.partitions, self.timers)
        for user, state in result.states.items():
            assert_bounded(state, self.processor.limits)
            assert decode_state(encode_state(state)) == state
            self.states[user] = state
        encode_value(self.partitions[0].to_wire())
        for output in result.results[0].outputs:
            encode_value(output.value)
            validate(OUTPUT_KINDS[output.topic], output.value)
        return None


def fuzz_one(data: bytes) -> None:
    """atheris entry. Byte 0 picks the topic (bit 0), JSON (bit 1) and a missing key (bit 2); byte 1
    is the key's length, then the key, then the value: seeds() shows valid records in this form."""
    choice = data[0] if data else 0
    topic = CLICKS if choice & 1 else ORDERS
    headers = [("content-type", b"application/json")] if choice & 2 else []
    size = data[1] if len(data) > 1 else 0
    key = None if choice & 4 else data[2 : 2 + size]
    _PIPELINE.check_record(topic, key, data[2 + size :], headers)


def seeds() -> list[bytes]:
    """Valid clicks and orders, msgpack and JSON, so mutation starts next to the accepted shapes."""
    import json

    click = {"event_id": "e1", "user_id": "u1", "type": "add_to_cart", "item_id": "sku-3", "ts": 1}
    order = {
        "event_id": "o1",
        "user_id": "u1",
        "order_id": "x",
        "status": "placed",
        "ts": 2,
        "items": [{"item_id": "sku-3", "quantity": 1, "price": 9.5}],
    }
    out = []
    for topic_bit, value in ((1, click), (0, order)):
        out.append(bytes([topic_bit, 2]) + b"u1" + encode_value(value))
        out.append(bytes([topic_bit | 2, 2]) + b"u1" + json.dumps(value).encode())
    return out


_PIPELINE = Pipeline()
