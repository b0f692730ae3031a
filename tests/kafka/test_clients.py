"""Kafka TLS/SASL settings: read from the environment, and handed to every client we create."""

from __future__ import annotations

import asyncio
import inspect
import ssl
import subprocess
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer

from streams.config import KafkaSecurity, Settings
from streams.kafka.clients import client_options, faust_credentials

PASSWORD = "s3cret-sasl-pass"
KEY_PASSWORD = "s3cret-key-pass"


@pytest.fixture(scope="module")
def client_cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate and its key, the key encrypted with KEY_PASSWORD."""
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "client.pem", folder / "client.key"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-days", "1", "-subj", "/CN=streams-test"),
            *("-keyout", str(key), "-out", str(cert), "-passout", f"pass:{KEY_PASSWORD}"),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


@pytest.fixture
def secured(client_cert: tuple[Path, Path], tmp_path: Path) -> Settings:
    cert, key = client_cert
    env = {
        "KAFKA_BOOTSTRAP": "broker-1:9093",
        "KAFKA_SECURITY_PROTOCOL": "sasl_ssl",
        "KAFKA_SSL_CAFILE": str(cert),  # the self-signed certificate is its own CA
        "KAFKA_SSL_CERTFILE": str(cert),
        "KAFKA_SSL_KEYFILE": str(key),
        "KAFKA_SSL_KEY_PASSWORD": KEY_PASSWORD,
        "KAFKA_SASL_MECHANISM": "scram-sha-512",
        "KAFKA_SASL_USERNAME": "streams",
        "KAFKA_SASL_PASSWORD": PASSWORD,
        "STREAMS_DATA_DIR": str(tmp_path),
    }
    with pytest.MonkeyPatch.context() as patch:
        for name, value in env.items():
            patch.setenv(name, value)
        return Settings.from_env()


def test_environment_to_settings(secured: Settings) -> None:
    security = secured.kafka_security
    assert (security.protocol, security.sasl_mechanism) == ("SASL_SSL", "SCRAM-SHA-512")
    assert (security.sasl_username, security.sasl_password) == ("streams", PASSWORD)
    assert PASSWORD not in repr(secured) and KEY_PASSWORD not in repr(secured)
    assert set(secured.secrets()) == {PASSWORD, KEY_PASSWORD}


@pytest.mark.parametrize(
    ("security", "complaint"),
    [
        ({"protocol": "TLS"}, "KAFKA_SECURITY_PROTOCOL"),
        ({"protocol": "SASL_SSL", "sasl_username": "u"}, "KAFKA_SASL_PASSWORD"),
        ({"protocol": "SASL_PLAINTEXT", "sasl_mechanism": "GSSAPI"}, "KAFKA_SASL_MECHANISM"),
        ({"protocol": "SSL", "ssl_keyfile": "k.pem"}, "KAFKA_SSL_CERTFILE"),
    ],
)
def test_incomplete_security_settings_are_refused_at_start(security: dict[str, str], complaint: str) -> None:
    with pytest.raises(ValueError, match=complaint):
        KafkaSecurity(**security)


def test_plaintext_by_default() -> None:
    plain = {"bootstrap_servers": "127.0.0.1:9092", "security_protocol": "PLAINTEXT"}
    assert client_options(Settings()) == plain
    assert faust_credentials(Settings()) is None


def test_options_for_sasl_over_tls(secured: Settings) -> None:
    options = client_options(secured)
    context = options.pop("ssl_context")
    assert options == {
        "bootstrap_servers": "broker-1:9093",
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "streams",
        "sasl_plain_password": PASSWORD,
    }
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert any(c["subject"] == ((("commonName", "streams-test"),),) for c in context.get_ca_certs())


def test_tls_only_has_no_sasl(secured: Settings) -> None:
    tls = replace(secured, kafka_security=replace(secured.kafka_security, protocol="SSL"))
    options = client_options(tls)
    assert options["security_protocol"] == "SSL" and "sasl_mechanism" not in options
    auth = credentials_to_aiokafka_auth(faust_credentials(tls))
    assert auth["security_protocol"] == "SSL" and isinstance(auth["ssl_context"], ssl.SSLContext)


def test_every_client_library_accepts_the_options(secured: Settings) -> None:
    names = set(client_options(secured))
    for client in (KafkaProducer, KafkaConsumer, KafkaAdminClient):
        assert names <= set(client.DEFAULT_CONFIG), client
    for client in (AIOKafkaConsumer, AIOKafkaProducer):
        assert names <= set(inspect.signature(client.__init__).parameters), client


def test_the_workers_librdkafka_clients_get_the_same_credentials(
    secured: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from streams.kafka.clients import librdkafka_config
    from streams.live import app as live_app

    configs: list[dict[str, Any]] = []

    def client(config: dict[str, Any]) -> object:
        configs.append(config)
        return object()

    for name in ("Consumer", "Producer", "AdminClient"):
        monkeypatch.setattr(live_app, name, client)
    live_app.Worker(replace(secured, data_dir=str(tmp_path)))
    assert len(configs) == 3  # the input consumer, the producer, the admin client
    expected = librdkafka_config(secured)
    assert expected["security.protocol"] == "SASL_SSL" and expected["sasl.password"]
    for config in configs:
        assert {k: config[k] for k in expected} == expected


class Recorded(Exception):
    """Raised by a stand-in client class once it has seen its constructor's arguments."""

    def __init__(self, kwargs: dict[str, Any]) -> None:
        super().__init__("constructed")
        self.kwargs = kwargs


def recorder(*args: Any, **kwargs: Any) -> None:
    raise Recorded(kwargs)


def constructed(call: Any) -> dict[str, Any]:
    with pytest.raises(Recorded) as caught:
        result = call()
        if inspect.isgenerator(result):
            next(result)
        elif inspect.iscoroutine(result):
            asyncio.run(result)
    return caught.value.kwargs


def call_sites(settings: Settings) -> dict[str, tuple[str, Any]]:
    """Every place that builds a Kafka client: (module attribute to replace, call that builds it)."""
    from streams.bench import passthrough, recovery
    from streams.kafka import produce, record, topics
    from streams.live import changelog

    return {
        "admin": ("streams.kafka.topics.KafkaAdminClient", lambda: topics.admin_client(settings)),
        "replay producer": ("streams.kafka.produce.KafkaProducer", lambda: produce.make_producer(settings)),
        "recorder": (
            "streams.kafka.record.KafkaConsumer",
            lambda: record.consume_topics(record.RecordOptions(("clicks",)), settings),
        ),
        "changelog reader": (
            "streams.live.changelog.KafkaConsumer",
            lambda: changelog.read_states(settings, "u1"),
        ),
        "bench changelog seeding": (
            "streams.bench.recovery.KafkaProducer",
            lambda: recovery.seed_changelog(settings, [], 0),
        ),
        "bench passthrough": (
            "streams.bench.passthrough.AIOKafkaConsumer",
            lambda: passthrough.passthrough(settings.bootstrap, ["clicks"], "out", "g", 10),
        ),
    }


@pytest.mark.parametrize(
    "site",
    [
        "admin",
        "replay producer",
        "recorder",
        "changelog reader",
        "bench changelog seeding",
        "bench passthrough",
    ],
)
def test_each_client_is_built_with_the_security_options(
    site: str, secured: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in (("KAFKA_SECURITY_PROTOCOL", "SASL_SSL"), ("KAFKA_SASL_PASSWORD", PASSWORD)):
        monkeypatch.setenv(name, value)  # the passthrough runs in its own process: environment only
    monkeypatch.setenv("KAFKA_SASL_USERNAME", "streams")
    target, build = call_sites(secured)[site]
    monkeypatch.setattr(target, recorder)
    kwargs = constructed(build)
    assert kwargs["security_protocol"] == "SASL_SSL"
    assert (kwargs["sasl_plain_username"], kwargs["sasl_plain_password"]) == ("streams", PASSWORD)
    assert isinstance(kwargs["ssl_context"], ssl.SSLContext)


def test_librdkafka_clients_get_the_same_security_settings(client_cert: tuple[Path, Path]) -> None:
    from streams.kafka.clients import librdkafka_config

    cert, key = client_cert
    security = KafkaSecurity(
        protocol="SASL_SSL",
        ssl_certfile=str(cert),
        ssl_keyfile=str(key),
        ssl_key_password=KEY_PASSWORD,
        sasl_mechanism="SCRAM-SHA-512",
        sasl_username="streams",
        sasl_password=PASSWORD,
    )
    config = librdkafka_config(Settings(bootstrap="b:9093", kafka_security=security))
    assert config == {
        "bootstrap.servers": "b:9093",
        "security.protocol": "SASL_SSL",
        "socket.nagle.disable": True,
        "ssl.certificate.location": str(cert),
        "ssl.key.location": str(key),
        "ssl.key.password": KEY_PASSWORD,
        "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.username": "streams",
        "sasl.password": PASSWORD,
    }
    assert librdkafka_config(Settings(bootstrap="b:9092")) == {
        "bootstrap.servers": "b:9092",
        "security.protocol": "PLAINTEXT",
        "socket.nagle.disable": True,
    }
