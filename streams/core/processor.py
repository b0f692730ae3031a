"""The core's entry point: one validated event + the user's state in, the new state and outputs out.

Adapters (the Faust worker, the offline replay) call only this. It is synchronous and pure, and the
time it uses is the event's own time, so the same inputs give the same outputs everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from streams.core.events import Position, UserEvent
from streams.core.state import StateLimits, UserState, apply_event, is_duplicate


@dataclass(frozen=True, slots=True)
class Transition:
    state: UserState
    applied: bool  # False: a re-delivered event; `state` is the unchanged input state
    outputs: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)  # (topic, key, value)


@dataclass(frozen=True, slots=True)
class Processor:
    limits: StateLimits = field(default_factory=StateLimits)

    def process(
        self, state: UserState | None, event: UserEvent, position: Position | None = None
    ) -> Transition:
        if state is not None and is_duplicate(state, event, position):
            return Transition(state, applied=False)
        return Transition(apply_event(state, event, position, self.limits), applied=True)
