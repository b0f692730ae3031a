"""The local broker helper against the broker CI has already started (`streams kafka up`)."""

from __future__ import annotations

import os
import time

import pytest

from streams.config import DEFAULT_BOOTSTRAP
from streams.kafka_local import LocalKafka, wait_for_broker

pytestmark = pytest.mark.integration

BOOTSTRAP = os.environ.get("KAFKA_BOOTSTRAP", DEFAULT_BOOTSTRAP)


@pytest.fixture(scope="module", autouse=True)
def _broker() -> None:
    # CI starts the broker in an earlier step; give a slow runner a moment rather than failing.
    wait_for_broker(BOOTSTRAP, timeout=60)


def test_status_reports_the_broker_up() -> None:
    status = LocalKafka().status()

    assert status.up
    assert status.cluster_id
    if status.pid is not None:  # started by `streams kafka up` from this checkout
        os.kill(status.pid, 0)


def test_up_again_is_a_fast_noop() -> None:
    kafka = LocalKafka()
    before = kafka.status()

    started = time.monotonic()
    after = kafka.up(timeout=30)
    elapsed = time.monotonic() - started

    assert after.up
    assert not after.started
    assert after.pid == before.pid
    assert after.cluster_id == before.cluster_id
    assert elapsed < 2.0, f"a no-op up() took {elapsed:.2f}s"
