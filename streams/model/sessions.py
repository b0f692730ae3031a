"""Session data in the SR-GNN text format: one session per line, item ids separated by spaces.

Item ids stay strings on purpose: the streaming side sees opaque ids, and the models map them to
dense indices themselves, so no caller ever depends on SR-GNN's integer remapping.
"""

from __future__ import annotations

import gzip
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

Case = tuple[list[str], str]
"""A next-item case: the items seen so far (oldest first) and the item that came next."""


def _lines(path: Path | str) -> Iterator[str]:
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as handle:
        for line in handle:
            # Blank lines (e.g. a trailing newline pair) carry no session, so they are not one.
            if line.strip():
                yield line.rstrip("\n")


def read_sessions(path: Path | str) -> list[list[str]]:
    """Sessions in click order, one per non-blank line (gzip when the name ends in `.gz`)."""
    return [line.split() for line in _lines(path)]


def read_prefix_targets(path: Path | str) -> list[Case]:
    """Evaluation cases from `prefix items<TAB>target` lines, kept in file order."""
    cases: list[Case] = []
    for number, line in enumerate(_lines(path), start=1):
        prefix, sep, target = line.partition("\t")
        if not sep or not prefix.split() or len(target.split()) != 1:
            raise ValueError(f"{path}:{number}: expected 'prefix items<TAB>target', got {line!r}")
        cases.append((prefix.split(), target.strip()))
    return cases


def augment(sessions: Sequence[Sequence[str]]) -> list[Case]:
    """SR-GNN prefix augmentation: [x1..xn] gives ([x1..x(n-1)], xn), ..., ([x1], x2), longest first.

    The order matters: SR-GNN's `test.txt` lists each session's cases longest prefix first, and keeping
    it lets our cases line up one to one with the official file.
    """
    return [
        (list(session[:end]), session[end]) for session in sessions for end in range(len(session) - 1, 0, -1)
    ]


def split_validation(sessions: Sequence[T], fraction: float = 0.1) -> tuple[list[T], list[T]]:
    """Hold out the LAST `fraction` of sessions, so tuning never looks at the official test file.

    The tail is used (not a random sample) because the file follows the preprocessing order, which is
    roughly chronological: validating on the tail mimics predicting the future from the past.
    """
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"fraction must be in (0, 1), got {fraction}")
    # Half-up rounding: Python's round() is banker's, which would make the size depend on parity.
    n_valid = int(len(sessions) * fraction + 0.5)
    cut = len(sessions) - n_valid
    return list(sessions[:cut]), list(sessions[cut:])
