"""Event logs: the one format that `generate`, `import`, `record` write and `replay` reads.

One JSON object per line: `topic` (logical name such as `clicks`), `key` (str or null), `value`
(the event as a JSON object), `ts` (epoch ms, the Kafka timestamp), optional `headers` (str -> str).
A message whose bytes are not a JSON-representable map (e.g. a recorded poison message) carries
`value_b64` (base64 of the exact bytes) instead of `value`, so a replay reproduces it bit for bit.
Files ending in `.gz` are gzip-compressed.
"""

from __future__ import annotations

import base64
import gzip
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from streams.codec import CONTENT_TYPE, JSON_CONTENT_TYPE, encode_value, is_json


@dataclass(frozen=True, slots=True)
class LogRecord:
    topic: str
    key: str | None
    ts: int
    value: dict[str, Any] | None = None
    value_bytes: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)

    def wire_value(self) -> bytes:
        """The message value as it travels on Kafka."""
        if self.value_bytes is not None:
            return self.value_bytes
        if self.value is None:
            return b""
        if self.headers and is_json(self.wire_headers()):
            return json.dumps(self.value, separators=(",", ":")).encode()
        return encode_value(self.value)

    def wire_headers(self) -> list[tuple[str, bytes]]:
        return [(k, v.encode()) for k, v in self.headers.items()]

    def to_json(self) -> str:
        out: dict[str, Any] = {"topic": self.topic, "key": self.key, "ts": self.ts}
        if self.value_bytes is not None:
            out["value_b64"] = base64.b64encode(self.value_bytes).decode()
        else:
            out["value"] = self.value
        if self.headers:
            out["headers"] = self.headers
        return json.dumps(out, separators=(",", ":"), ensure_ascii=False, sort_keys=False)

    @classmethod
    def from_json(cls, line: str) -> LogRecord:
        raw = json.loads(line)
        value_b64 = raw.get("value_b64")
        return cls(
            topic=raw["topic"],
            key=raw.get("key"),
            ts=int(raw["ts"]),
            value=raw.get("value"),
            value_bytes=base64.b64decode(value_b64) if value_b64 is not None else None,
            headers=dict(raw.get("headers") or {}),
        )


def json_headers() -> dict[str, str]:
    return {CONTENT_TYPE: JSON_CONTENT_TYPE}


def _open(path: str | Path, mode: str) -> IO[str]:
    if str(path).endswith(".gz"):
        return gzip.open(path, mode + "t", encoding="utf-8")  # type: ignore[return-value]
    return open(path, mode, encoding="utf-8")


def read_log(path: str | Path) -> Iterator[LogRecord]:
    with _open(path, "r") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                yield LogRecord.from_json(line)
            except (ValueError, KeyError) as exc:
                raise ValueError(f"{path}:{number}: not an event-log line: {exc}") from None


def write_log(path: str | Path, records: Iterable[LogRecord]) -> int:
    count = 0
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with _open(path, "w") as f:
        for record in records:
            f.write(record.to_json())
            f.write("\n")
            count += 1
    return count
