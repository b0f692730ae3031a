"""Runtime settings shared by every command: where the broker is and what the topics are called."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace

DEFAULT_BOOTSTRAP = "127.0.0.1:9092"

# Logical topic names are part of the v1 contract; the physical names may carry a prefix so that
# several apps (or several tests) share one cluster without seeing each other's traffic.
LOGICAL_TOPICS = (
    "clicks",
    "orders",
    "catalog",
    "recommendations",
    "promotion-triggers",
    "audience-segments",
    "dead-letters",
    "demand",
    "demand-forecasts",
)
INPUT_TOPICS = ("clicks", "orders")
COMPACTED_TOPICS = frozenset({"catalog"})


@dataclass(frozen=True)
class Settings:
    bootstrap: str = DEFAULT_BOOTSTRAP
    topic_prefix: str = ""
    partitions: int = 8
    replication: int = 1
    # Time-based retention measures a record's own timestamp, and a replayed log keeps its original
    # (old) event times: with the broker's 7-day default, a replay of last month would be deleted
    # before the worker reads it. Keep everything by default; set a real limit in production.
    retention_ms: int = -1
    app_id: str = "streams"
    data_dir: str = ".cache/worker"
    web_host: str = "127.0.0.1"
    web_port: int = 6066
    recent_events: int = 50
    producer_linger_ms: float = 5.0
    stall_seconds: float = 60.0  # /healthz reports a stall after this long with lag and no progress
    api_token: str | None = None  # required by /users/{id}/state, /profile, /context; unset: closed
    advertised_url: str | None = None  # how other workers reach this one (default: http://host:port)
    overrides: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_env(cls, **changes: object) -> Settings:
        env = os.environ
        base = cls(
            bootstrap=env.get("KAFKA_BOOTSTRAP", DEFAULT_BOOTSTRAP),
            topic_prefix=env.get("STREAMS_TOPIC_PREFIX", ""),
            partitions=int(env.get("STREAMS_PARTITIONS", "8")),
            replication=int(env.get("STREAMS_REPLICATION", "1")),
            retention_ms=int(env.get("STREAMS_RETENTION_MS", "-1")),
            app_id=env.get("STREAMS_APP_ID", "streams"),
            data_dir=env.get("STREAMS_DATA_DIR", ".cache/worker"),
            web_host=env.get("STREAMS_WEB_HOST", "127.0.0.1"),
            web_port=int(env.get("STREAMS_WEB_PORT", "6066")),
            producer_linger_ms=float(env.get("STREAMS_PRODUCER_LINGER_MS", "5")),
            stall_seconds=float(env.get("STREAMS_STALL_SECONDS", "60")),
            api_token=env.get("STREAMS_API_TOKEN") or None,
            advertised_url=env.get("STREAMS_ADVERTISED_URL") or None,
        )
        return replace(base, **{k: v for k, v in changes.items() if v is not None})

    def topic(self, logical: str) -> str:
        """Physical topic name for a logical one (`clicks` -> `<prefix>clicks`)."""
        if logical in self.overrides:
            return self.overrides[logical]
        return f"{self.topic_prefix}{logical}"

    def canonical_url(self) -> str:
        if self.advertised_url:
            return self.advertised_url
        host = "127.0.0.1" if self.web_host in ("0.0.0.0", "") else self.web_host
        return f"http://{host}:{self.web_port}"

    def physical(self, name: str) -> str:
        """The topic to use for a name found in a log: logical names map, anything else is kept."""
        return self.topic(name) if name in LOGICAL_TOPICS else name

    def logical(self, physical: str) -> str | None:
        """Inverse of `topic`: the logical name, or None for a topic that is not ours."""
        for name in LOGICAL_TOPICS:
            if self.topic(name) == physical:
                return name
        return None
