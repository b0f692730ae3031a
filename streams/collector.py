"""Python's cyclic garbage collector, set for processes that make many short-lived objects per event.

Each event allocates a few hundred objects (the decoded value, a state copy, the recommendation) and
almost none of them end up in a reference cycle. At CPython's default thresholds (700, 10, 10) a
young collection ran every few events and an old one every few hundred, each walking everything the
process keeps (the states it holds, the catalog, the log being replayed): a third of the offline
replay's time, and pauses of tens of milliseconds that every event in flight of a live worker waits
out. Rarer collections keep the same memory within a few MiB, since so little is cyclic garbage.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

# Young collections every 50,000 net allocations (a batch or two), older generations rarely.
THRESHOLDS = (50_000, 50, 100)


def settle() -> None:
    """For a long-running process once it has loaded what it keeps for good (model, catalog, the
    framework's objects): collect once, put what is alive out of the collector's reach, and make
    collections rare from now on."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*THRESHOLDS)


@contextmanager
def rare_collections() -> Iterator[None]:
    """The thresholds of `settle` for the duration of a block (an offline replay), then the previous
    ones again."""
    previous = gc.get_threshold()
    gc.set_threshold(*THRESHOLDS)
    try:
        yield
    finally:
        gc.set_threshold(*previous)


@contextmanager
def paused_collections() -> Iterator[None]:
    """No cyclic collection during a block that allocates much and keeps much of it (an offline
    replay, or one of its micro-batches: parsed events, state snapshots, model inputs, outputs), and
    what the block leaves alive is frozen at its end (`gc.freeze`): out of every later collection's
    walk. A replay keeps its states and outputs until it ends, and collections after each batch
    walked them again and again to find next to nothing (a replay of 10,000 generated events leaves
    about ten objects in reference cycles; they stay, frozen). Reference counting frees what is
    dropped, frozen or not. Then the collector is enabled again if it was."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if enabled:
            gc.enable()


@contextmanager
def collections_paused_for_a_run() -> Iterator[None]:
    """`paused_collections` around a whole replay, whose batches freeze what they keep; at its end
    everything is handed back to the collector (`gc.unfreeze`), so what the run kept is collected
    once the caller drops it, cycles included: a process that replays again and again (tests, a
    notebook) does not keep every run's cyclic garbage for good."""
    try:
        with paused_collections():
            yield
    finally:
        gc.unfreeze()
