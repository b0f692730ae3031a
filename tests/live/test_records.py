"""InputRecord.from_message with a fake librdkafka message: the record is read once, in the units
the rest of the live path uses (seconds), and absent parts are normalised so nobody checks twice."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from confluent_kafka import TIMESTAMP_CREATE_TIME, TIMESTAMP_LOG_APPEND_TIME, TIMESTAMP_NOT_AVAILABLE

from streams.live.records import InputRecord


@dataclass
class FakeMessage:
    """The part of confluent_kafka.Message that from_message reads."""

    _timestamp: tuple[int, int] = (TIMESTAMP_CREATE_TIME, 1_700_000_000_123)
    _headers: list[tuple[str, bytes]] | None = None
    _topic: str = "clicks"
    _partition: int = 3
    _offset: int = 42
    _key: bytes | None = b"u1"
    _value: bytes | None = b"payload"

    def topic(self) -> str:
        return self._topic

    def partition(self) -> int:
        return self._partition

    def offset(self) -> int:
        return self._offset

    def timestamp(self) -> tuple[int, int]:
        return self._timestamp

    def key(self) -> bytes | None:
        return self._key

    def value(self) -> bytes | None:
        return self._value

    def headers(self) -> list[tuple[str, bytes]] | None:
        return self._headers


def test_the_position_key_and_value_are_copied() -> None:
    record = InputRecord.from_message(FakeMessage())  # type: ignore[arg-type]
    assert (record.topic, record.partition, record.offset) == ("clicks", 3, 42)
    assert (record.key, record.value) == (b"u1", b"payload")
    assert record.message is record  # the sequencer's envelope is the record itself


@pytest.mark.parametrize("kind", [TIMESTAMP_CREATE_TIME, TIMESTAMP_LOG_APPEND_TIME])
def test_the_timestamp_is_in_seconds_and_back_to_the_same_milliseconds(kind: int) -> None:
    """The event-time merge compares seconds; a dead letter's `ts` needs the exact milliseconds."""
    record = InputRecord.from_message(FakeMessage(_timestamp=(kind, 1_700_000_000_123)))  # type: ignore[arg-type]
    assert record.timestamp == pytest.approx(1_700_000_000.123, abs=1e-6)
    assert record.timestamp_ms == 1_700_000_000_123


def test_no_timestamp_is_none_not_the_epoch() -> None:
    """librdkafka reports (TIMESTAMP_NOT_AVAILABLE, -1 or 0): it must not become 1970."""
    for raw in (-1, 0):
        message = FakeMessage(_timestamp=(TIMESTAMP_NOT_AVAILABLE, raw))
        record = InputRecord.from_message(message)  # type: ignore[arg-type]
        assert record.timestamp is None
        assert record.timestamp_ms is None


def test_headers_none_is_an_empty_tuple_and_headers_keep_their_order() -> None:
    assert InputRecord.from_message(FakeMessage(_headers=None)).headers == ()  # type: ignore[arg-type]
    headers = [("b", b"2"), ("a", b"1"), ("b", b"3")]
    record = InputRecord.from_message(FakeMessage(_headers=headers))  # type: ignore[arg-type]
    assert record.headers == (("b", b"2"), ("a", b"1"), ("b", b"3"))
    hash(record)  # frozen and made of tuples: usable as a key


@pytest.mark.parametrize("ms", [1_079_337_347_472, 541_169_507_341, 2_183_226_373_411])
def test_timestamp_ms_is_the_records_own_milliseconds(ms: int) -> None:
    record = InputRecord.from_message(FakeMessage(_timestamp=(TIMESTAMP_CREATE_TIME, ms)))  # type: ignore[arg-type]
    assert record.timestamp_ms == ms
