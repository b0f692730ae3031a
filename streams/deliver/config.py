"""What `streams deliver` sends, where, and how fast: from the environment, flags override."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

FORMATS = ("webhook", "klaviyo", "segment")
SOURCES = ("promotion-triggers", "audience-segments")


@dataclass(frozen=True)
class DeliverConfig:
    """The receiving side's URL, secret and credentials come from the environment only (flags would
    show them in `ps`); `secrets()` lists what must never reach a log line."""

    url: str
    format: str = "webhook"
    sources: tuple[str, ...] = ("promotion-triggers",)
    # Standard Webhooks signing secret (`whsec_` + base64, or any other text taken as raw bytes).
    secret: str | None = field(default=None, repr=False)
    # Klaviyo: the private API key; Segment: the source's write key.
    api_key: str | None = field(default=None, repr=False)
    ca_file: str | None = None  # trust this CA bundle for the receiver; unset: the system's CAs
    batch_size: int = 100  # outputs taken per commit; Segment's batch calls carry up to this many
    requests_per_second: float = 10.0
    burst: int = 10
    timeout_seconds: float = 10.0
    backoff_base_seconds: float = 0.5
    backoff_max_seconds: float = 60.0
    backfill: bool = False  # deliver `replay: true` outputs too, marked as a backfill
    group_id: str = "streams-deliver"
    metrics_port: int | None = None  # serve Prometheus `/metrics` on 127.0.0.1:port
    metrics_host: str = "127.0.0.1"

    def __post_init__(self) -> None:
        if not self.url.startswith(("https://", "http://")):
            raise ValueError("STREAMS_DELIVER_URL must be an https:// URL")
        if self.format not in FORMATS:
            raise ValueError(f"format {self.format!r}: use one of {', '.join(FORMATS)}")
        unknown = [s for s in self.sources if s not in SOURCES]
        if unknown or not self.sources:
            raise ValueError(f"sources {list(self.sources)}: use one or both of {', '.join(SOURCES)}")
        if self.format == "webhook" and not self.secret:
            raise ValueError("the webhook format signs every request: set STREAMS_DELIVER_SECRET")
        if self.format in ("klaviyo", "segment") and not self.api_key:
            raise ValueError(f"the {self.format} format needs STREAMS_DELIVER_API_KEY")
        if self.batch_size < 1 or self.requests_per_second <= 0 or self.burst < 1:
            raise ValueError("batch size, rate and burst must be positive")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **changes: object) -> DeliverConfig:
        env = os.environ if env is None else env
        base = {
            "url": env.get("STREAMS_DELIVER_URL", ""),
            "secret": env.get("STREAMS_DELIVER_SECRET") or None,
            "api_key": env.get("STREAMS_DELIVER_API_KEY") or None,
            "ca_file": env.get("STREAMS_DELIVER_CA_FILE") or None,
        }
        if not base["url"]:
            raise ValueError("set STREAMS_DELIVER_URL to the receiver's https:// endpoint")
        return cls(**{**base, **_given(changes)})  # type: ignore[arg-type]

    def secrets(self) -> list[str]:
        return [value for value in (self.secret, self.api_key) if value]


def _given(changes: Mapping[str, object]) -> dict[str, object]:
    return {k: v for k, v in changes.items() if v is not None}
