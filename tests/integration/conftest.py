from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from streams.config import Settings
from streams.kafka_local import wait_for_broker
from tests.integration.harness import WorkerProcess, isolated_settings, start_worker


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def bootstrap() -> str:
    address = os.environ.get("KAFKA_BOOTSTRAP", "127.0.0.1:9092")
    try:
        wait_for_broker(address, timeout=10)
    except Exception as exc:
        message = f"no Kafka broker at {address} ({exc}); start one with `make kafka-up`"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)  # CI starts the broker itself: its absence is a failure, never a skip
        pytest.skip(message)
    return address


@pytest.fixture
def settings(bootstrap: str, tmp_path: Path) -> Settings:
    return isolated_settings(bootstrap, tmp_path)


@pytest.fixture
def worker(settings: Settings, tmp_path: Path) -> Iterator[WorkerProcess]:
    process = start_worker(settings, tmp_path)
    try:
        yield process
    finally:
        process.stop()
