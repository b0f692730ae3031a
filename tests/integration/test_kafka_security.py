"""Kafka SASL end to end: a broker of our own that requires SASL/PLAIN, a worker, `replay` and
the changelog reader connected only through the KAFKA_SECURITY_* / KAFKA_SASL_* settings."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from streams.config import KafkaSecurity, Settings
from streams.generate import TrafficConfig, generate_traffic
from streams.kafka.record import RecordOptions, consume_topics
from streams.kafka_local import LocalKafka, LocalKafkaConfig
from streams.live.changelog import read_states
from tests.integration.harness import free_port, isolated_settings, produce, start_worker, wait_until

USER, PASSWORD = "streams", "sasl-pw-4b1d"


@pytest.fixture(scope="module")
def sasl_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A second, throwaway broker: SASL_PLAINTEXT for clients, PLAINTEXT only for its readiness probe."""
    cache = tmp_path_factory.mktemp("sasl-kafka")
    shared_jars = LocalKafkaConfig().libs_dir
    if shared_jars.is_dir():
        (cache / "libs").symlink_to(shared_jars)  # else `up` fetches them, as `make kafka-up` does
    probe, sasl, controller = free_port(), free_port(), free_port()
    jaas = (
        "org.apache.kafka.common.security.plain.PlainLoginModule required "
        f'username="admin" password="admin-pw" user_admin="admin-pw" user_{USER}="{PASSWORD}";'
    )
    config = LocalKafkaConfig(
        cache_dir=cache,
        port=probe,
        controller_port=controller,
        heap_max="512m",
        extra_properties={
            "listeners": f"PLAINTEXT://127.0.0.1:{probe},SASL_PLAINTEXT://127.0.0.1:{sasl},"
            f"CONTROLLER://127.0.0.1:{controller}",
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{probe},SASL_PLAINTEXT://127.0.0.1:{sasl}",
            "listener.security.protocol.map": (
                "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT"
            ),
            "sasl.enabled.mechanisms": "PLAIN",
            "listener.name.sasl_plaintext.plain.sasl.jaas.config": jaas,
        },
    )
    broker = LocalKafka(config)
    broker.up(timeout=180)
    try:
        yield f"127.0.0.1:{sasl}"
    finally:
        broker.down()


def test_worker_replay_and_changelog_over_sasl(
    sasl_bootstrap: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    security = KafkaSecurity(
        protocol="SASL_PLAINTEXT", sasl_mechanism="PLAIN", sasl_username=USER, sasl_password=PASSWORD
    )
    settings: Settings = replace(isolated_settings(sasl_bootstrap, tmp_path), kafka_security=security)
    # The worker is a child process: it reads its security settings from the environment, as in production.
    for name, value in {
        "KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
        "KAFKA_SASL_MECHANISM": "PLAIN",
        "KAFKA_SASL_USERNAME": USER,
        "KAFKA_SASL_PASSWORD": PASSWORD,
    }.items():
        monkeypatch.setenv(name, value)
    records = list(generate_traffic(TrafficConfig(users=20, items=50, events=300, seed=3)))
    events = sum(1 for r in records if r.topic in ("clicks", "orders"))
    produce(records, settings)  # admin + replay producer, over SASL
    worker = start_worker(settings, tmp_path)
    try:
        worker.wait_ready(timeout=180)
        seen: list[object] = []

        def all_recommendations() -> bool:
            options = RecordOptions(("recommendations",), from_beginning=True, until_idle=2.0)
            seen[:] = [m for batch in consume_topics(options, settings) for m in batch]
            return len(seen) >= events

        wait_until(all_recommendations, 180, "a recommendation per event, read over SASL")
        states = read_states(settings)  # the changelog reader, over SASL
        assert states and {r.key for r in records if r.topic == "clicks"} >= set(states)
    finally:
        worker.stop()
    assert PASSWORD not in worker.log_path.read_text(errors="replace")


def test_a_wrong_password_is_refused(sasl_bootstrap: str, tmp_path: Path) -> None:
    from kafka.errors import KafkaError

    from streams.kafka.topics import ensure_topics

    wrong = KafkaSecurity(protocol="SASL_PLAINTEXT", sasl_username=USER, sasl_password="not-it")
    settings = replace(isolated_settings(sasl_bootstrap, tmp_path), kafka_security=wrong)
    with pytest.raises(KafkaError):
        ensure_topics(settings)
