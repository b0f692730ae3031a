"""Replay a log through ingress and the core in-process: the reference the live worker must match."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from streams.config import INPUT_TOPICS
from streams.core.processor import Processor
from streams.core.state import UserState
from streams.errors import BadMessage
from streams.ingest import parse_user_event
from streams.logs import LogRecord


@dataclass
class StateReplay:
    states: dict[str, UserState] = field(default_factory=dict)
    dead_letters: list[tuple[LogRecord, BadMessage]] = field(default_factory=list)
    applied: int = 0


def replay_states(records: Iterable[LogRecord], processor: Processor | None = None) -> StateReplay:
    processor = processor or Processor()
    out = StateReplay()
    for record in records:
        if record.topic not in INPUT_TOPICS:
            continue
        try:
            event = parse_user_event(
                record.topic, record.key and record.key.encode(), record.wire_value(), record.wire_headers()
            )
        except BadMessage as exc:
            out.dead_letters.append((record, exc))
            continue
        transition = processor.process(out.states.get(event.user_id), event)
        if transition.applied:
            out.applied += 1
            out.states[event.user_id] = transition.state
    return out
