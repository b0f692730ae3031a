"""The featurizer shared by training and serving: histories in, fixed-vocabulary integer arrays out.

Pure numpy, no torch, so the live worker can import it. Training builds its batches with exactly
these functions and `export` stores the config and vocabulary next to the ONNX graph, so an event can
never become one input at training time and another at serving time.

A history is a sequence of `(item_id | None, kind, ts)` in event-time order (what `UserState.recent`
holds). Only its last `window` events are used, so the cost of one prediction is bounded and does not
grow with the shopper's history.

Arrays are right-padded: row b holds its events at positions 0..n_b-1 (oldest first) and padding
after them. The model reads the last real event at n_b-1, so padding never changes a row's output and
a batch may be padded to its own longest row instead of the full window.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from itertools import chain, repeat
from operator import itemgetter
from typing import Any

import numpy as np

PAD = 0
UNKNOWN = 1  # items outside the vocabulary, and events without an item (search)
RESERVED = 2  # indices below this are never recommended

# Index 0 is padding; an unknown kind maps to "other" rather than failing the whole batch.
EVENT_KINDS: tuple[str, ...] = (
    "<pad>",
    "view",
    "add_to_cart",
    "remove_from_cart",
    "search",
    "order_placed",
    "order_cancelled",
    "order_returned",
    "other",
)
_KIND_INDEX = {kind: index for index, kind in enumerate(EVENT_KINDS)}
_OTHER_KIND = _KIND_INDEX["other"]

INPUT_NAMES: tuple[str, ...] = ("items", "kinds", "gaps")
OUTPUT_NAMES: tuple[str, ...] = ("logits", "intent")
# A step-mode artifact's graphs: the window graph also returns the state to carry; the step graph
# takes that state and the newest events (the new one last) and returns the next state.
STATE_NAME = "state"
WINDOW_OUTPUT_NAMES: tuple[str, ...] = (*OUTPUT_NAMES, STATE_NAME)
STEP_INPUT_NAMES: tuple[str, ...] = (STATE_NAME, *INPUT_NAMES)
NEXT_STATE_NAME = "next_state"
STEP_OUTPUT_NAMES: tuple[str, ...] = (*OUTPUT_NAMES, NEXT_STATE_NAME)

History = Sequence[tuple[str | None, str, int]]

SESSION_GAP_MS = 30 * 60 * 1000  # as streams.core.state.SESSION_GAP_MS
SMALL_BATCH = 4  # up to this many rows, `Featurizer.encode` goes row by row (numpy's set-up costs more)
_IN_SESSION_BUCKETS = 11  # floor(log2(1 + s)) for s <= 1800 is 0..10
SESSION_START_BUCKET = 2 + _IN_SESSION_BUCKETS


@dataclass(frozen=True, slots=True)
class FeaturizerConfig:
    window: int = 50  # events the model sees; UserState keeps 50, so more would never be filled
    gap_buckets: int = 16  # 11 in-session log2-second buckets + 5 for gaps of 30 min, 1 h, 2 h, 4 h, 8 h+

    def __post_init__(self) -> None:
        if not 1 <= self.window <= 50:
            raise ValueError("window must be in 1..50")
        if self.gap_buckets <= _IN_SESSION_BUCKETS:
            raise ValueError(f"gap_buckets must be > {_IN_SESSION_BUCKETS}")

    @property
    def gap_vocab(self) -> int:
        # 0 = padding, 1 = first event of a history (no previous event), then the buckets.
        return self.gap_buckets + 2

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> FeaturizerConfig:
        return cls(**{k: raw[k] for k in ("window", "gap_buckets") if k in raw})


class ItemVocab:
    """Item id <-> index. Indices 0 (padding) and 1 (unknown) are reserved; items start at 2."""

    __slots__ = ("_index", "ids", "order")

    def __init__(self, ids: Sequence[str]) -> None:
        self.ids: list[str] = list(ids)
        self._index: dict[str, int] = {item: i + RESERVED for i, item in enumerate(self.ids)}
        if len(self._index) != len(self.ids):
            raise ValueError("duplicate item ids in vocabulary")
        # Rank of each index in item-id order: the deterministic tie-break for equal scores. The
        # reserved indices sort last so they can never win a tie.
        order = np.full(len(self), np.iinfo(np.int64).max, dtype=np.int64)
        order[RESERVED:] = np.argsort(np.argsort(np.array(self.ids, dtype=object), kind="stable"))
        self.order = order

    @classmethod
    def from_counts(cls, counts: Counter[str], min_count: int = 1) -> ItemVocab:
        # Most frequent first: stable across runs on the same data and cache-friendly for the output layer.
        kept = [item for item, n in counts.items() if n >= min_count]
        kept.sort(key=lambda item: (-counts[item], item))
        return cls(kept)

    def __len__(self) -> int:
        return len(self.ids) + RESERVED

    def __contains__(self, item_id: object) -> bool:
        return item_id in self._index

    def index(self, item_id: str | None) -> int:
        if item_id is None:
            return UNKNOWN
        return self._index.get(item_id, UNKNOWN)

    @property
    def lookup(self) -> Callable[[str | None, int], int]:
        """`dict.get` of id -> index, for a caller that looks up many ids (None is never a key)."""
        return self._index.get  # type: ignore[return-value]

    def known_indices(self, item_ids: Iterable[str]) -> list[int]:
        """The indices of the items of `item_ids` in the vocabulary (unknown ones left out)."""
        found = map(self._index.get, item_ids)
        return [index for index in found if index is not None]

    def item(self, index: int) -> str:
        if index < RESERVED:
            raise KeyError(f"index {index} is reserved")
        return self.ids[index - RESERVED]


def kind_index(kind: str) -> int:
    return _KIND_INDEX.get(kind, _OTHER_KIND)


def gap_bucket(gap_ms: int, buckets: int) -> int:
    """Bucket of the time since the previous event.

    Up to 30 minutes (the session split rule of `streams.core.state`): 2 + floor(log2(1 + seconds)),
    i.e. buckets 2..12. Longer gaps start a new session and get their own buckets from
    `SESSION_START_BUCKET` on, doubling from 30 minutes, so "a new session began here" is one exact
    comparison for the model instead of a blurred log bucket.
    """
    if gap_ms <= SESSION_GAP_MS:
        return 2 + int(math.log2(1.0 + max(0, gap_ms) / 1000.0))
    extra = buckets - _IN_SESSION_BUCKETS - 1
    return SESSION_START_BUCKET + min(extra, int(math.log2(gap_ms / SESSION_GAP_MS)))


def gap_buckets(gaps_ms: np.ndarray, buckets: int) -> np.ndarray:
    """`gap_bucket` of every element (int64 in, int64 out): the same integers, computed at once."""
    gaps = np.asarray(gaps_ms, dtype=np.int64)
    inside = 2 + np.floor(np.log2(1.0 + np.maximum(gaps, 0) / 1000.0))
    extra = buckets - _IN_SESSION_BUCKETS - 1
    with np.errstate(divide="ignore", invalid="ignore"):  # the gaps inside a session are not used here
        outside = SESSION_START_BUCKET + np.minimum(extra, np.floor(np.log2(gaps / SESSION_GAP_MS)))
    return np.where(gaps <= SESSION_GAP_MS, inside, outside).astype(np.int64)


_ITEM_OF, _KIND_OF, _TS_OF = itemgetter(0), itemgetter(1), itemgetter(2)  # of a history entry


class Featurizer:
    def __init__(self, vocab: ItemVocab, config: FeaturizerConfig | None = None) -> None:
        self.vocab = vocab
        self.config = config or FeaturizerConfig()

    def encode_sequence(self, history: History) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Item, kind and gap indices of every event, oldest first (no window).

        Training encodes each full history once and slices windows out of it; `encode_one` is the
        same slice, so both paths give identical inputs by construction.
        """
        n = len(history)
        items = np.empty(n, dtype=np.int64)
        kinds = np.empty(n, dtype=np.int64)
        gaps = np.empty(n, dtype=np.int64)
        buckets = self.config.gap_buckets
        previous_ts: int | None = None
        for i, (item_id, kind, ts) in enumerate(history):
            items[i] = self.vocab.index(item_id)
            kinds[i] = kind_index(kind)
            gaps[i] = 1 if previous_ts is None else gap_bucket(ts - previous_ts, buckets)
            previous_ts = ts
        return items, kinds, gaps

    def encode_one(
        self, history: History, window: int | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The last `window` events (the configured window by default). One event before them is
        kept for its timestamp, so the first visible gap is the real one: truncation changes only
        which events are visible."""
        window = self.config.window if window is None else window
        tail = history[-(window + 1) :] if len(history) > window else history
        items, kinds, gaps = self.encode_sequence(tail)
        return items[-window:], kinds[-window:], gaps[-window:]

    def encode(
        self, histories: Iterable[History], pad_to: int | None = None, window: int | None = None
    ) -> dict[str, np.ndarray]:
        """Model inputs for a batch: int64 arrays `items`, `kinds`, `gaps` of shape [batch, T].

        T is the longest (windowed) history in the batch, at least 1, or `pad_to`. An empty history
        becomes an all-padding row; the model still answers for it (a popularity-like guess).
        `window`: see `encode_one` (a step graph reads fewer events than the window graph).
        """
        window = self.config.window if window is None else window
        histories = list(histories)
        if len(histories) <= SMALL_BATCH:
            return self._encode_rows(histories, pad_to, window)
        # The whole batch at once (encode_one's result for every row, without a Python loop per
        # event): the newest `window` events of each history, and one before them for its timestamp.
        tails = [h[-(window + 1) :] if len(h) > window else h for h in histories]
        lengths = np.fromiter(map(len, tails), dtype=np.int64, count=len(tails))
        visible = np.minimum(lengths, window)
        width = max(1, int(visible.max(initial=0))) if pad_to is None else pad_to
        out = {name: np.zeros((len(tails), width), dtype=np.int64) for name in INPUT_NAMES}
        total = int(lengths.sum())
        if not total:
            return out
        # Columns and lookups by map over C functions: no Python frame per event (this runs for
        # every batch).
        flat = list(chain.from_iterable(tails))
        item_ids, kind_names = map(_ITEM_OF, flat), map(_KIND_OF, flat)
        items = np.fromiter(map(self.vocab.lookup, item_ids, repeat(UNKNOWN)), dtype=np.int64, count=total)
        kind = np.fromiter(map(_KIND_INDEX.get, kind_names, repeat(_OTHER_KIND)), dtype=np.int64, count=total)
        ts = np.fromiter(map(_TS_OF, flat), dtype=np.int64, count=total)
        gaps = np.ones(total, dtype=np.int64)
        gaps[1:] = gap_buckets(ts[1:] - ts[:-1], self.config.gap_buckets)
        starts = np.cumsum(lengths) - lengths
        gaps[starts[lengths > 0]] = 1  # a history's first event has no previous one
        rows = np.repeat(np.arange(len(tails)), lengths)
        columns = np.arange(total) - starts[rows] - (lengths - visible)[rows]
        shown = columns >= 0
        for name, values in (("items", items), ("kinds", kind), ("gaps", gaps)):
            out[name][rows[shown], columns[shown]] = values[shown]
        return out

    def encode_newest(self, histories: Sequence[History]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Item, kind and gap indices of each (non-empty) history's newest event, as `encode` gives
        them for that event: a step reads one new event, and its older ones come with the state."""
        newest = [h[-1] for h in histories]
        n = len(newest)
        items = np.fromiter(
            map(self.vocab.lookup, map(_ITEM_OF, newest), repeat(UNKNOWN)), dtype=np.int64, count=n
        )
        kinds = np.fromiter(
            map(_KIND_INDEX.get, map(_KIND_OF, newest), repeat(_OTHER_KIND)), dtype=np.int64, count=n
        )
        ts = np.fromiter(map(_TS_OF, newest), dtype=np.int64, count=n)
        before = np.fromiter((h[-2][2] if len(h) > 1 else 0 for h in histories), dtype=np.int64, count=n)
        first = np.fromiter((len(h) <= 1 for h in histories), dtype=bool, count=n)
        gaps = np.where(first, 1, gap_buckets(ts - before, self.config.gap_buckets))
        return items, kinds, gaps

    def _encode_rows(
        self, histories: list[History], pad_to: int | None, window: int
    ) -> dict[str, np.ndarray]:
        """`encode` row by row: cheaper than the vectorised form for a handful of rows."""
        rows = [self.encode_one(h, window) for h in histories]
        width = max([1, *(len(r[0]) for r in rows)]) if pad_to is None else pad_to
        out = {name: np.zeros((len(rows), width), dtype=np.int64) for name in INPUT_NAMES}
        for b, row in enumerate(rows):
            n = len(row[0])
            for name, values in zip(INPUT_NAMES, row, strict=True):
                out[name][b, :n] = values
        return out


def views(items: Iterable[str]) -> list[tuple[str | None, str, int]]:
    """A plain item sequence (SR-GNN sessions, `predict` prefixes) as a history of views.

    Such data has no timestamps; one second apart is a typical in-session pace and, being the same at
    training and serving time, is all the model needs.
    """
    return [(item, "view", i * 1000) for i, item in enumerate(items)]


def history_of(recent: Iterable[Any]) -> list[tuple[str | None, str, int]]:
    """`UserState.recent` (objects with item_id, kind, ts; already in event-time order) as a history."""
    return [(e.item_id, e.kind, e.ts) for e in recent]
