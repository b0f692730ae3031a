from __future__ import annotations

import pytest

from streams.live.readiness import WorkerCondition, liveness, readiness

READY = WorkerCondition(joined=True, restoring=False, catalog_ready=True, stalled=False)


def test_a_worker_with_its_partitions_restored_is_ready_and_alive() -> None:
    assert readiness(READY) == ({"status": "ready", "reasons": []}, 200)
    assert liveness(READY) == ({"status": "alive"}, 200)


@pytest.mark.parametrize(
    ("condition", "reasons"),
    [
        (
            WorkerCondition(joined=False, restoring=False, catalog_ready=False, stalled=False),
            ["joining", "loading_catalog"],
        ),
        (WorkerCondition(joined=True, restoring=True, catalog_ready=True, stalled=False), ["restoring"]),
        (
            WorkerCondition(joined=True, restoring=False, catalog_ready=False, stalled=False),
            ["loading_catalog"],
        ),
        (WorkerCondition(joined=True, restoring=False, catalog_ready=True, stalled=True), ["stalled"]),
    ],
)
def test_not_ready_names_every_reason(condition: WorkerCondition, reasons: list[str]) -> None:
    document, status = readiness(condition)
    assert status == 503
    assert document == {"status": "not_ready", "reasons": reasons}


def test_restoring_is_alive_but_a_stall_is_not() -> None:
    restoring = WorkerCondition(joined=True, restoring=True, catalog_ready=True, stalled=False)
    assert liveness(restoring)[1] == 200
    stalled = WorkerCondition(joined=True, restoring=False, catalog_ready=True, stalled=True)
    assert liveness(stalled) == ({"status": "stalled"}, 503)
