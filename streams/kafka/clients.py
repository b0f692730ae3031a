"""Connection options for every Kafka client we create, built from Settings in one place.

kafka-python (admin, replay producer, recorder, changelog reader) and aiokafka (the catalog
follower, the passthrough benchmark) name their bootstrap and security options alike, and both
accept a ready `ssl.SSLContext`; Faust takes the same facts as `broker_credentials`.
"""

from __future__ import annotations

import ssl
from typing import TYPE_CHECKING, Any

from aiokafka.helpers import create_ssl_context

from streams.config import KafkaSecurity, Settings

if TYPE_CHECKING:
    from faust.types.auth import CredentialsT


def client_options(settings: Settings) -> dict[str, Any]:
    """`bootstrap_servers` and the security keyword arguments of a kafka-python or aiokafka client."""
    security = settings.kafka_security
    options: dict[str, Any] = {
        "bootstrap_servers": settings.bootstrap,
        "security_protocol": security.protocol,
    }
    if security.uses_ssl:
        options["ssl_context"] = ssl_context(security)
    if security.uses_sasl:
        options["sasl_mechanism"] = security.sasl_mechanism
        options["sasl_plain_username"] = security.sasl_username
        options["sasl_plain_password"] = security.sasl_password
    return options


def faust_credentials(settings: Settings) -> CredentialsT | None:
    """The Faust app's `broker_credentials` (None: plaintext)."""
    from faust.auth import SASLCredentials, SSLCredentials  # deferred: only the worker imports Faust

    security = settings.kafka_security
    context = ssl_context(security) if security.uses_ssl else None
    if security.uses_sasl:
        return SASLCredentials(
            username=security.sasl_username,
            password=security.sasl_password,
            ssl_context=context,
            mechanism=security.sasl_mechanism,
        )
    if context is not None:
        return SSLCredentials(context)
    return None


def ssl_context(security: KafkaSecurity) -> ssl.SSLContext:
    """Verifies the brokers (KAFKA_SSL_CAFILE, else the system's CAs) and checks their host names."""
    return create_ssl_context(
        cafile=security.ssl_cafile,
        certfile=security.ssl_certfile,
        keyfile=security.ssl_keyfile,
        password=security.ssl_key_password,
    )


def librdkafka_config(settings: Settings) -> dict[str, Any]:
    """Bootstrap and security of a librdkafka client (confluent-kafka, quixstreams), from Settings.

    Producers add `partitioner: murmur2_random`: librdkafka's own default (crc32) would put a key
    elsewhere than the Java clients and kafka-python do (streams.partitioning)."""
    security = settings.kafka_security
    config: dict[str, Any] = {
        "bootstrap.servers": settings.bootstrap,
        "security.protocol": security.protocol,
        # librdkafka leaves Nagle's algorithm on (the Java clients, kafka-python and asyncio turn it
        # off): a small request sent while the previous one is unacknowledged then waits for the
        # broker's delayed ACK, up to 40 ms on Linux, which is a recommendation's whole budget.
        "socket.nagle.disable": True,
    }
    if security.uses_ssl:
        config.update(
            {
                key: value
                for key, value in (
                    ("ssl.ca.location", security.ssl_cafile),
                    ("ssl.certificate.location", security.ssl_certfile),
                    ("ssl.key.location", security.ssl_keyfile),
                    ("ssl.key.password", security.ssl_key_password),
                )
                if value
            }
        )
    if security.uses_sasl:
        config["sasl.mechanism"] = security.sasl_mechanism
        config["sasl.username"] = security.sasl_username
        config["sasl.password"] = security.sasl_password
    return config
