"""Online = offline through the approximate nearest-neighbour index: a worker and `streams replay
--offline`, both serving the shipped model from its index, give the same outputs, id for id."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from streams.config import Settings
from streams.model import ann
from tests.integration import test_offline_parity as parity
from tests.integration.harness import WorkerProcess, start_worker


@pytest.fixture
def through_the_index(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Every model load of this test (the worker's and the offline replay's) serves the shipped
    model's 2,000 items from the index, cached in the test's own folder."""
    monkeypatch.setenv(ann.MIN_ITEMS_ENV, "1")
    monkeypatch.setenv(ann.CACHE_DIR_ENV, str(tmp_path / "ann"))
    return tmp_path / "ann"


@pytest.fixture
def indexed_worker(through_the_index: Path, settings: Settings, tmp_path: Path) -> Iterator[WorkerProcess]:
    process = start_worker(settings, tmp_path)
    try:
        yield process
    finally:
        process.stop()


def test_a_worker_serving_from_the_index_equals_the_offline_replay(
    through_the_index: Path,
    shared_data: Path,
    settings: Settings,
    indexed_worker: WorkerProcess,
    tmp_path: Path,
) -> None:
    parity.test_live_replay_equals_the_offline_replay(
        "generated-50k", shared_data, settings, indexed_worker, tmp_path
    )
    assert list(through_the_index.glob("ann-*.faiss"))  # the index path served, not the exact one
