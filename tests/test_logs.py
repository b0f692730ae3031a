from __future__ import annotations

from pathlib import Path

import pytest

from streams.codec import decode_value
from streams.logs import LogRecord, json_headers, read_log, write_log


@pytest.mark.parametrize("name", ["log.jsonl", "log.jsonl.gz"])
def test_round_trip_keeps_values_headers_and_raw_bytes(tmp_path: Path, name: str) -> None:
    records = [
        LogRecord("clicks", "u1", 5, value={"event_id": "e", "user_id": "u1", "type": "search", "ts": 5}),
        LogRecord("clicks", "u2", 6, value={"x": "é"}, headers=json_headers()),
        LogRecord("clicks", None, 7, value_bytes=b"\xc1\x00poison"),
    ]
    path = tmp_path / name
    assert write_log(path, records) == 3
    back = list(read_log(path))
    assert back == records
    assert [r.wire_value() for r in back] == [r.wire_value() for r in records]
    assert decode_value(back[1].wire_value(), back[1].wire_headers()) == {"x": "é"}
    assert back[2].wire_value() == b"\xc1\x00poison"


def test_a_broken_line_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"topic": "clicks", "key": "u", "ts": 1, "value": {}}\nnot json\n')
    with pytest.raises(ValueError, match=r"bad\.jsonl:2"):
        list(read_log(path))
