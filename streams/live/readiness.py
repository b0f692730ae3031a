"""Liveness and readiness of a worker, as an orchestrator asks for them.

Alive: the process should keep running. Only a stall (input waits and nothing is processed,
streams.live.liveness) is a reason to restart it; a worker restoring its tables is busy, not dead.
Ready: it should get traffic. Not before the consumer group gave it its partitions and their
tables are restored from the changelogs, not while the catalog loads, not while stalled: until
then its HTTP answers would miss the state it is about to own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

JOINING = "joining"  # the consumer group has not given this worker its partitions yet
RESTORING = "restoring"  # tables are being restored from their changelogs
LOADING_CATALOG = "loading_catalog"  # the catalog topic is still being read
STALLED = "stalled"  # input waits and nothing was processed for STREAMS_STALL_SECONDS


@dataclass(frozen=True, slots=True)
class WorkerCondition:
    joined: bool
    restoring: bool
    catalog_ready: bool
    stalled: bool

    def not_ready_because(self) -> list[str]:
        reasons = []
        if not self.joined:
            reasons.append(JOINING)
        if self.restoring:
            reasons.append(RESTORING)
        if not self.catalog_ready:
            reasons.append(LOADING_CATALOG)
        if self.stalled:
            reasons.append(STALLED)
        return reasons


def readiness(condition: WorkerCondition) -> tuple[dict[str, Any], int]:
    """`GET /readyz`: 200 `ready`, or 503 `not_ready` with the reasons."""
    reasons = condition.not_ready_because()
    if reasons:
        return {"status": "not_ready", "reasons": reasons}, 503
    return {"status": "ready", "reasons": []}, 200


def liveness(condition: WorkerCondition) -> tuple[dict[str, Any], int]:
    """`GET /livez`: 200 `alive` (restoring included), or 503 `stalled`."""
    if condition.stalled:
        return {"status": STALLED}, 503
    return {"status": "alive"}, 200
