from __future__ import annotations

import pytest

from streams.codec import encode_value
from streams.deadletters import dead_letter_value
from streams.errors import BadMessage

ERROR = BadMessage("value_too_large", "too big")


def test_a_record_within_the_cap_is_kept_byte_exact() -> None:
    letter = dead_letter_value("clicks", 1, 7, b"u1", b"\x81\xa1a\x01", ERROR, 5, max_bytes=100)
    assert (letter["key"], letter["value"], "truncated" in letter) == (b"u1", b"\x81\xa1a\x01", False)


@pytest.mark.parametrize(("key_bytes", "value_bytes"), [(10, 5_000), (5_000, 10), (0, 5_000), (3_000, 3_000)])
def test_an_oversized_record_keeps_its_beginning_and_sizes(key_bytes: int, value_bytes: int) -> None:
    key, value = b"k" * key_bytes, b"v" * value_bytes
    letter = dead_letter_value("clicks", 0, 0, key, value, ERROR, 0, max_bytes=1_000)
    assert letter["truncated"] == {"key_bytes": key_bytes, "value_bytes": value_bytes}
    assert len(letter["key"]) + len(letter["value"]) == 1_000
    assert key.startswith(letter["key"]) and value.startswith(letter["value"])
    assert len(encode_value(letter)) < 1_000 + 200


def test_a_missing_key_or_value_stays_missing() -> None:
    letter = dead_letter_value("clicks", 0, 0, None, b"v" * 50, ERROR, 0, max_bytes=10)
    assert letter["key"] is None and letter["value"] == b"v" * 10
    assert dead_letter_value("clicks", 0, 0, None, None, ERROR, 0)["value"] is None
