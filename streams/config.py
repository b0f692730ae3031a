"""Runtime settings shared by every command: where the broker is and what the topics are called."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from streams.codec import MAX_VALUE_BYTES
from streams.output_encoding import DEFAULT_OUTPUT_FORMAT, OutputFormat, output_format
from streams.web_access import WebAccess

DEFAULT_BOOTSTRAP = "127.0.0.1:9092"
SECURITY_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")

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
# The worker's Faust tables; each is backed by a compacted changelog topic named after the app id.
STATE_TABLE, PARTITION_TABLE = "user_state", "partition_state"
TABLES = (STATE_TABLE, PARTITION_TABLE)


@dataclass(frozen=True)
class KafkaSecurity:
    """How every Kafka client of ours connects: TLS and/or SASL (see streams.kafka.clients)."""

    protocol: str = "PLAINTEXT"
    ssl_cafile: str | None = None  # CA bundle to verify the brokers; unset: the system's CAs
    ssl_certfile: str | None = None  # client certificate (mutual TLS)
    ssl_keyfile: str | None = None
    ssl_key_password: str | None = field(default=None, repr=False)
    sasl_mechanism: str = "PLAIN"
    sasl_username: str | None = None
    sasl_password: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.protocol not in SECURITY_PROTOCOLS:
            raise ValueError(f"KAFKA_SECURITY_PROTOCOL={self.protocol!r}: use one of {SECURITY_PROTOCOLS}")
        if self.uses_sasl:
            if self.sasl_mechanism not in SASL_MECHANISMS:
                mechanism = self.sasl_mechanism
                raise ValueError(f"KAFKA_SASL_MECHANISM={mechanism!r}: use one of {SASL_MECHANISMS}")
            if not self.sasl_username or not self.sasl_password:
                raise ValueError(f"{self.protocol} needs KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD")
        if self.ssl_keyfile and not self.ssl_certfile:
            raise ValueError("KAFKA_SSL_KEYFILE needs KAFKA_SSL_CERTFILE (the client certificate)")

    @property
    def uses_ssl(self) -> bool:
        return self.protocol in ("SSL", "SASL_SSL")

    @property
    def uses_sasl(self) -> bool:
        return self.protocol in ("SASL_PLAINTEXT", "SASL_SSL")

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> KafkaSecurity:
        return cls(
            protocol=env.get("KAFKA_SECURITY_PROTOCOL", "PLAINTEXT").upper(),
            ssl_cafile=env.get("KAFKA_SSL_CAFILE") or None,
            ssl_certfile=env.get("KAFKA_SSL_CERTFILE") or None,
            ssl_keyfile=env.get("KAFKA_SSL_KEYFILE") or None,
            ssl_key_password=env.get("KAFKA_SSL_KEY_PASSWORD") or None,
            sasl_mechanism=env.get("KAFKA_SASL_MECHANISM", "PLAIN").upper(),
            sasl_username=env.get("KAFKA_SASL_USERNAME") or None,
            sasl_password=env.get("KAFKA_SASL_PASSWORD") or None,
        )


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
    producer_linger_ms: float = 1.0
    # How often the worker's processed state becomes durable (changelogs, input offsets, local
    # stores): after a crash, at most this much is processed again by the next owner.
    commit_interval_ms: float = 100.0
    stall_seconds: float = 60.0  # /healthz reports a stall after this long with lag and no progress
    # Required by /users/{id}/state, /profile and /context; unset: those endpoints are closed.
    api_token: str | None = field(default=None, repr=False)
    # Larger input values are dead-lettered without being decoded.
    max_message_bytes: int = MAX_VALUE_BYTES
    # Keys the user-id hash in logs; without the salt a hash cannot be matched to a guessed id.
    log_salt: str = field(default="streams", repr=False)
    kafka_security: KafkaSecurity = field(default_factory=KafkaSecurity)
    advertised_url: str | None = None  # how other workers reach this one (default: http://host:port)
    # For the whole worker: one block cache all its RocksDB databases share (one per table and
    # partition), with their memtables charged to it (streams/live/rocks.py). Faust's defaults
    # (a 2 GiB cache and 3 x 64 MiB write buffers per database) let a worker grow by gigabytes.
    rocksdb_cache_mb: int = 64
    rocksdb_write_buffer_mb: int = 32  # the memtables' share of the cache
    web_access: WebAccess = field(default_factory=WebAccess)  # collector keys, CORS, shopper tokens
    output_format: OutputFormat = DEFAULT_OUTPUT_FORMAT  # of every output value (msgpack or json)
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
            producer_linger_ms=float(env.get("STREAMS_PRODUCER_LINGER_MS", "1")),
            commit_interval_ms=float(env.get("STREAMS_COMMIT_INTERVAL_MS", "100")),
            stall_seconds=float(env.get("STREAMS_STALL_SECONDS", "60")),
            api_token=env.get("STREAMS_API_TOKEN") or None,
            advertised_url=env.get("STREAMS_ADVERTISED_URL") or None,
            max_message_bytes=int(env.get("STREAMS_MAX_MESSAGE_BYTES", str(MAX_VALUE_BYTES))),
            log_salt=env.get("STREAMS_LOG_SALT") or "streams",
            kafka_security=KafkaSecurity.from_env(env),
            rocksdb_cache_mb=int(env.get("STREAMS_ROCKSDB_CACHE_MB", "64")),
            rocksdb_write_buffer_mb=int(env.get("STREAMS_ROCKSDB_WRITE_BUFFER_MB", "32")),
            web_access=WebAccess.from_env(env),
            output_format=output_format(env.get("STREAMS_OUTPUT_FORMAT") or DEFAULT_OUTPUT_FORMAT),
        )
        return replace(base, **{k: v for k, v in changes.items() if v is not None})

    def rocksdb_options(self) -> dict[str, int]:
        """Per-database options (Faust's RocksDBOptions); the memory budget is `RocksMemory`'s."""
        return {
            # A database's memtable is flushed at this size, or sooner when the shared budget is full.
            "write_buffer_size": min(4, self.rocksdb_write_buffer_mb) * 1024 * 1024,
            "max_write_buffer_number": 2,
        }

    def secrets(self) -> list[str]:
        """Values that must never appear in a log line."""
        security = self.kafka_security
        candidates = (security.sasl_password, security.ssl_key_password, self.api_token)
        return [value for value in candidates if value] + self.web_access.secrets()

    def changelog_topic(self, table: str) -> str:
        """Faust's name for a table's changelog topic."""
        return f"{self.app_id}-{table}-changelog"

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
