"""Is this worker stuck? Input is waiting and nothing has been processed for a while.

An idle worker (nothing to read) is healthy however long it stays idle; a busy one is healthy as
long as its processed count moves. Only the combination, lag above zero and no progress for
`after` seconds, is a stall: `/healthz` then answers 503 so an orchestrator restarts the worker.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class StallDetector:
    after: float = 60.0  # seconds without progress while lag > 0
    _progress: int | None = None
    _since: float = 0.0  # when progress last moved, or the worker was last idle

    def observe(self, processed: int, lag: int, now: float) -> bool:
        """Record the processed count and input lag at `now` (monotonic seconds); True: stalled."""
        if processed != self._progress or lag <= 0:
            self._progress = processed
            self._since = now
            return False
        return now - self._since >= self.after

    def stalled_for(self, now: float) -> float:
        return now - self._since
