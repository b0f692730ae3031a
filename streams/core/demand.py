"""Demand signals counted in the stream: views, carts and orders per item, category and in total,
in event-time windows (tumbling and hopping), per partition.

The input is partitioned by user, demand is per item; rather than repartition the stream through
another topic, each partition counts what it sees and emits a window's counts once the partition's
event time has passed the window's end plus the allowed lateness. A consumer adds the partitions
up. A partition emits its windows in order of their end, each window's keys sorted so that its
`total` comes last, and nothing for a key (or a window) with no events: a window is complete once
every partition has emitted the total of that window or of a later one, and a key missing from it
counted zero. (The live worker keeps that order on the topic: demand from input partition p goes
to partition p of `demand`.) Ids are derived from (window, key, partition), so a re-emission after a
crash carries the same id and the same counts.

Windows are assembled from panes (the greatest common divisor of every size and hop): an event
increments one pane per key, whatever the number of overlapping windows, and a window's counts are
the sum of its panes when it closes. A pane is dropped once no open window needs it.

An event is counted in each of its windows not emitted yet. One that arrives after all its windows
were emitted counts nowhere, and `late` counts it: emitted counts are final, never revised.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from math import gcd, inf
from operator import sub
from typing import Any

from streams.core.events import SCHEMA_VERSION
from streams.core.ids import stable_id

DEMAND = "demand"
MEASURES = ("views", "carts", "orders", "units")  # units: quantity ordered
SCOPES = {"i": "item", "c": "category", "t": "total"}
TOTAL = "t:all"  # the key every event counts under


@dataclass(frozen=True, slots=True)
class WindowSpec:
    """Windows of `size_ms` starting every `hop_ms`, aligned to the epoch (tumbling: hop == size).

    Every window with events emits its `total`; `scopes` says what else it breaks them down by. Items
    are many, so by default only tumbling windows carry them (each hop multiplies the messages)."""

    size_ms: int
    hop_ms: int
    scopes: tuple[str, ...] = ("item", "category")

    def __post_init__(self) -> None:
        if self.size_ms <= 0 or self.hop_ms <= 0 or self.size_ms % self.hop_ms:
            raise ValueError(f"a demand window needs 0 < hop <= size, size a multiple of hop: {self}")
        unknown = sorted(set(self.scopes) - {"item", "category"})
        if unknown:
            raise ValueError(f"unknown demand scope(s) {unknown}: choose from item, category")

    @property
    def prefixes(self) -> tuple[str, ...]:
        return ("t:", *(f"{scope[0]}:" for scope in self.scopes))

    def first_end(self, ts: int) -> int:
        """The earliest end of a window holding `ts`."""
        return (ts // self.hop_ms) * self.hop_ms + self.hop_ms


@dataclass(slots=True)
class DemandWindows:
    specs: tuple[WindowSpec, ...]
    # pane start -> key ("i:<item>", "c:<category>", TOTAL) -> [views, carts, orders, units]
    panes: dict[int, dict[str, list[int]]] = field(default_factory=dict)
    next_end: list[int] = field(default_factory=list)  # per spec: end of the next window to emit
    late: int = 0  # events that came after every window holding them was emitted
    pane_ms: int = field(init=False)
    sizes: tuple[int, ...] = field(init=False)  # of the specs, in their order
    # Both follow from `next_end` (see _follow_next_end) and are not stored: kept at hand, they let
    # count() and close() decide with one comparison what most events need (no window closes).
    due: float = field(init=False, compare=False, repr=False)  # close() emits nothing before it
    open_from: float = field(init=False, compare=False, repr=False)  # count(): earlier events are late

    def __post_init__(self) -> None:
        if not self.specs:
            raise ValueError("demand windows need at least one window spec")
        step = 0
        for spec in self.specs:
            step = gcd(gcd(step, spec.size_ms), spec.hop_ms)
        self.pane_ms = step
        self.sizes = tuple(spec.size_ms for spec in self.specs)
        self._follow_next_end()

    def count(self, ts: int, increments: Mapping[str, Sequence[int]]) -> bool:
        """Add each key's measures (a list in `MEASURES` order) at event time `ts`; False: too late."""
        if ts < self.open_from:
            if self.next_end:
                self.late += 1
                return False
            self.next_end = [spec.first_end(ts) for spec in self.specs]  # the first event opens them
            self._follow_next_end()
        start = ts - ts % self.pane_ms
        pane = self.panes.get(start)
        if pane is None:
            pane = self.panes[start] = {}
        _add(pane, increments)
        return True

    def close(self, horizon: int, partition: int) -> list[dict[str, Any]]:
        """The counts of every window that ends at or before `horizon`: oldest end first, then by
        spec and key."""
        if horizon < self.due:
            return []  # most events: no window ends yet
        out: list[tuple[int, int, list[dict[str, Any]]]] = []
        for index, spec in enumerate(self.specs):
            while self.next_end[index] <= horizon:
                end = self.next_end[index]
                rows = self._window(spec, end, partition)
                if rows:
                    out.append((end, index, rows))
                    self.next_end[index] = end + spec.hop_ms
                else:
                    self.next_end[index] = self._next_busy_end(spec, end, horizon)
        self._follow_next_end()
        if out:
            for start in [p for p in self.panes if p < self.open_from]:
                del self.panes[start]
        return [row for _, _, rows in sorted(out, key=lambda o: (o[0], o[1])) for row in rows]

    def _next_busy_end(self, spec: WindowSpec, end: int, horizon: int) -> int:
        """After an empty window ending at `end`: the end of the next window with events, or the
        first end past `horizon`. A quiet night (or an event time far ahead) is skipped in one step
        rather than one empty window at a time."""
        ahead = [start for start in self.panes if start >= end]
        return max(end + spec.hop_ms, spec.first_end(min(ahead) if ahead else horizon))

    def _follow_next_end(self) -> None:
        """Derive `due` (the earliest end to emit) and `open_from` (the earliest event time an open
        window still holds: panes before it are done) from `next_end`; before the first event no
        window is open, and both are infinite so that the first event opens them."""
        if self.next_end:
            self.due = min(self.next_end)
            self.open_from = min(map(sub, self.next_end, self.sizes))
        else:
            self.due = self.open_from = inf

    def _window(self, spec: WindowSpec, end: int, partition: int) -> list[dict[str, Any]]:
        start = end - spec.size_ms
        sums: dict[str, list[int]] = {TOTAL: [0, 0, 0, 0]}
        letters = "".join(prefix[0] for prefix in spec.prefixes)  # of the scopes the window reports
        every_scope = set(letters) == SCOPES.keys()
        for pane_start in range(start, end, self.pane_ms):
            pane = self.panes.get(pane_start, {})
            if not every_scope:  # items are most keys: add up only what the window reports
                pane = {key: counts for key, counts in pane.items() if key[0] in letters}
            _add(sums, pane)
        return [
            _value(key, counts, spec, start, end, partition)
            for key, counts in sorted(sums.items())
            if any(counts)
        ]

    def to_wire(self) -> dict[str, Any]:
        return {
            "s": [[s.size_ms, s.hop_ms, list(s.scopes)] for s in self.specs],
            "p": {str(start): keys for start, keys in self.panes.items()},  # msgpack: string map keys
            "e": self.next_end,
            "l": self.late,
        }

    @classmethod
    def from_wire(cls, raw: dict[str, Any]) -> DemandWindows:
        specs = tuple(WindowSpec(size, hop, tuple(scopes)) for size, hop, scopes in raw["s"])
        panes = {int(start): keys for start, keys in raw["p"].items()}
        return cls(specs, panes, list(raw["e"]), raw["l"])


def _add(rows: dict[str, list[int]], increments: Mapping[str, Sequence[int]]) -> None:
    for key, measures in increments.items():
        row = rows.get(key)
        if row is None:
            rows[key] = list(measures)  # a copy: rows are updated in place, never shared
        else:  # four subscripts cost less than one list(map(add, ...)) or a new list
            row[0] += measures[0]
            row[1] += measures[1]
            row[2] += measures[2]
            row[3] += measures[3]


def _value(
    key: str, counts: list[int], spec: WindowSpec, start: int, end: int, partition: int
) -> dict[str, Any]:
    views, carts, orders, units = counts  # MEASURES, spelled out below: no dict(zip(...)) per row
    return {
        "schema_version": SCHEMA_VERSION,
        "demand_id": stable_id("d", spec.size_ms, spec.hop_ms, end, key, partition),
        "scope": SCOPES[key[0]],  # a key is "<scope letter>:<name>"
        "key": key[2:],
        "window_start": start,
        "window_end": end,
        "window_size_ms": spec.size_ms,
        "window_hop_ms": spec.hop_ms,
        "partition": partition,
        "views": views,
        "carts": carts,
        "orders": orders,
        "units": units,
        "ts": end,
    }


COUNTED_CLICKS: dict[str, tuple[int, ...]] = {"view": (1, 0, 0, 0), "add_to_cart": (0, 1, 0, 0)}


def click_increments(kind: str, item_id: str, category: str | None) -> dict[str, tuple[int, ...]]:
    """A view or add-to-cart: one for the item, its category and the total."""
    measures = COUNTED_CLICKS[kind]  # the keys of _keys, in its order, built without a list
    if category:
        return {TOTAL: measures, f"i:{item_id}": measures, f"c:{category}": measures}
    return {TOTAL: measures, f"i:{item_id}": measures}


def order_increments(lines: Iterable[tuple[str, int, str | None]]) -> dict[str, list[int]]:
    """A placed order of (item, quantity, category) lines: one order for each key it holds, however
    many of its lines do, and the units ordered."""
    increments: dict[str, list[int]] = {}
    for item_id, quantity, category in lines:
        for key in _keys(item_id, category):
            increments.setdefault(key, [0, 0, 1, 0])[3] += quantity
    return increments


def _keys(item_id: str, category: str | None) -> list[str]:
    return [TOTAL, f"i:{item_id}", *([f"c:{category}"] if category else [])]


def topic_key(value: dict[str, Any]) -> str:
    """The Kafka key of a demand event: scope and key, so one consumer partition sees all of a key."""
    return f"{value['scope']}:{value['key']}"
