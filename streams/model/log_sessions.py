"""Event log -> next-item session files in the SR-GNN layout, so any shop's traffic can be scored
like Diginetica: `streams evaluate` reads the folder this writes.

The rules follow SR-GNN's preprocessing where it applies to our logs:

- a session is one shopper's clicks with one `session_id`, or, for clicks sent without one, a run
  of clicks split on more than 30 minutes of inactivity (as `streams train --events` splits them);
- its items are those of its views and add-to-carts in event-time order; impressions are what was
  shown, not what the shopper did, and are never part of it;
- sessions with fewer than two items predict nothing and are dropped;
- a time split: sessions ordered by their first click, the newest `test_fraction` are the test
  sessions; items a test session has that training never saw are removed from it (no ranker can
  score them), then test sessions left with one item are dropped;
- the test cases are SR-GNN's augmentation (`sessions.augment`).

Unlike SR-GNN, consecutive repeats are kept: in a click log they are real re-visits, the behaviour
session popularity (S-POP) exploits, and a model that is to beat it must see them.
"""

from __future__ import annotations

import gzip
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from streams.core.attribution import is_impression_value
from streams.core.state import SESSION_GAP_MS
from streams.errors import SchemaViolation
from streams.logs import LogRecord, read_log
from streams.model.evaluate import TEST_FILE, TRAIN_FILE
from streams.model.sessions import Case, augment, split_validation
from streams.schemas import validate

TEST_SESSIONS_FILE = "test_sessions.txt.gz"
ITEM_KINDS = frozenset({"view", "add_to_cart"})


@dataclass(frozen=True, slots=True)
class _Click:
    ts: int
    seq: int
    item: str | None  # None for a click that is no item's view or add-to-cart (a search, a removal)
    session: str | None


@dataclass(frozen=True, slots=True)
class LogSession:
    """One shopper's session: when its first click happened and its items, oldest first."""

    start: int
    user: str
    key: str  # the session id sent, or "@<ts of its first click>" when split on inactivity
    items: tuple[str, ...]


@dataclass
class SessionSplit:
    """Training sessions, test sessions and their cases, and what was dropped on the way."""

    train: list[list[str]]
    test: list[list[str]]
    cases: list[Case]
    counts: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, int] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        return {**self.counts, "skipped": dict(sorted(self.skipped.items())), **repeat_rates(self.cases)}


def sessions_from_log(records: Iterable[LogRecord], skipped: Counter[str]) -> list[LogSession]:
    """Every session of every shopper in the log, in no particular order.

    A click that the worker would dead-letter (its bytes undecodable, its fields against the
    schema) is no part of any shopper's history, so it is counted in `skipped` by reason instead.
    """
    per_user: dict[str, list[_Click]] = defaultdict(list)
    for seq, record in enumerate(records):
        if record.topic != "clicks":
            continue
        value = record.value
        if value is None:
            skipped["click not a JSON map"] += 1
            continue
        try:
            validate("click", value)
        except SchemaViolation as exc:
            skipped[f"click {exc.code} ({exc.field})"] += 1
            continue
        if is_impression_value(value):
            continue
        item = value.get("item_id") if value["type"] in ITEM_KINDS else None
        if item is not None and any(c.isspace() for c in item):
            # The session files separate items by white space: such an id cannot be written.
            skipped["item_id with white space"] += 1
            continue
        per_user[value["user_id"]].append(_Click(value["ts"], seq, item, value.get("session_id")))

    sessions: list[LogSession] = []
    for user, clicks in per_user.items():
        current: str | None = None
        last_ts: int | None = None
        starts: dict[str, int] = {}
        items: dict[str, list[str]] = defaultdict(list)
        for click in sorted(clicks, key=lambda c: (c.ts, c.seq)):
            if click.session is not None:
                current = click.session
            elif current is None or last_ts is None or click.ts - last_ts > SESSION_GAP_MS:
                current = f"@{click.ts}"
            last_ts = click.ts
            starts.setdefault(current, click.ts)
            if click.item is not None:
                items[current].append(click.item)
        sessions.extend(LogSession(starts[key], user, key, tuple(items[key])) for key in starts)
    return sessions


def split_sessions(sessions: Sequence[LogSession], test_fraction: float = 0.2) -> SessionSplit:
    """The time split, SR-GNN's test filter and augmentation (see the module's docstring)."""
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test fraction must be in (0, 1), got {test_fraction}")
    kept = sorted((s for s in sessions if len(s.items) >= 2), key=lambda s: (s.start, s.user, s.key))
    train_part, test_part = split_validation(kept, test_fraction)
    train = [list(s.items) for s in train_part]
    known = {item for session in train for item in session}
    filtered = [[item for item in s.items if item in known] for s in test_part]
    test = [session for session in filtered if len(session) >= 2]
    cases = augment(test)
    counts = {
        "sessions": len(sessions),
        "single_item_sessions_dropped": len(sessions) - len(kept),
        "train_sessions": len(train),
        "train_items": len(known),
        "test_items_unseen_dropped": sum(
            len(s.items) - len(f) for s, f in zip(test_part, filtered, strict=True)
        ),
        "test_sessions_dropped": len(test_part) - len(test),
        "test_sessions": len(test),
        "test_cases": len(cases),
    }
    return SessionSplit(train, test, cases, counts)


def repeat_rates(cases: Sequence[Case]) -> dict[str, float]:
    """Shares of targets already in their prefix, and equal to the prefix's last item (a re-click)."""
    n = len(cases)
    in_prefix = sum(1 for prefix, target in cases if target in prefix)
    last_item = sum(1 for prefix, target in cases if prefix and prefix[-1] == target)
    return {
        "repeat_in_prefix": in_prefix / n if n else 0.0,
        "repeat_last_item": last_item / n if n else 0.0,
    }


def build_session_files(log: Path, out: Path, test_fraction: float = 0.2) -> SessionSplit:
    """Read the log, split it and write the three files into `out`."""
    skipped: Counter[str] = Counter()
    split = split_sessions(sessions_from_log(read_log(log), skipped), test_fraction)
    split.skipped = dict(skipped)
    if not split.train or not split.cases:
        raise ValueError(
            f"{log}: {split.counts['train_sessions']} training sessions and {split.counts['test_cases']} "
            "test cases; a next-item evaluation needs some of both (sessions of two items or more)"
        )
    out.mkdir(parents=True, exist_ok=True)
    _write_gzip(out / TRAIN_FILE, (" ".join(s) for s in split.train))
    _write_gzip(out / TEST_SESSIONS_FILE, (" ".join(s) for s in split.test))
    _write_gzip(out / TEST_FILE, (f"{' '.join(prefix)}\t{target}" for prefix, target in split.cases))
    return split


def _write_gzip(path: Path, lines: Iterable[str]) -> None:
    # mtime 0 and no file name in the header: the same log gives the same files, byte for byte.
    text = "".join(f"{line}\n" for line in lines)
    path.write_bytes(gzip.compress(text.encode("utf-8"), mtime=0))
