"""Non-neural session-based baselines under one interface (models/onnx/README.md, Diginetica):
POP, S-POP, Item-KNN, SKNN, V-SKNN.

They exist to tell whether a trained model is worth shipping: a network that does not beat (V-)SKNN on
the same protocol does not earn its serving cost. All of them rank the whole catalogue (no negative
sampling, no filtering of items already in the session) and break score ties deterministically by
global popularity, then by item id, so two runs, and two implementations, give the same lists.

Internally items are dense indices in *tie-break order* (index 0 = the most clicked item, equal counts
ordered by item id). A lower index therefore always wins a tie, which turns every tie-break into a plain
secondary sort key and makes the popularity fallback "the lowest indices not yet taken".
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

Scores = tuple[np.ndarray, np.ndarray]
"""Candidate item indices (unique) and their scores; items not listed score 0."""


@runtime_checkable
class SessionRanker(Protocol):
    """What the evaluator needs from any next-item model, neural or not."""

    name: str

    def fit(self, train_sessions: list[list[str]]) -> None:
        """Learn from whole training sessions (each ranker does its own augmentation if it needs it)."""
        ...

    def topk(self, prefixes: Sequence[Sequence[str]], k: int) -> list[list[str]]:
        """The k best next items for each prefix, best first, ranked over the whole catalogue."""
        ...


def item_id_key(item: str) -> tuple[int, int, str]:
    """Order numeric ids by value (SR-GNN ids are 1..43097, so '9' < '10'), any other id after them."""
    return (0, int(item), item) if item.isdigit() else (1, 0, item)


@dataclass(frozen=True)
class Catalogue:
    """Every item seen in training, indexed in tie-break order (most clicked first, then by id)."""

    items: np.ndarray  # object array of item ids; position = dense index
    counts: np.ndarray  # training clicks per item, non-increasing
    index: dict[str, int]

    @classmethod
    def from_sessions(cls, sessions: Sequence[Sequence[str]]) -> Catalogue:
        clicks: dict[str, int] = {}
        for session in sessions:
            for item in session:
                clicks[item] = clicks.get(item, 0) + 1
        ordered = sorted(clicks, key=lambda item: (-clicks[item], item_id_key(item)))
        return cls(
            items=np.array(ordered, dtype=object),
            counts=np.array([clicks[item] for item in ordered], dtype=np.int64),
            index={item: i for i, item in enumerate(ordered)},
        )

    def __len__(self) -> int:
        return len(self.items)

    def encode(self, items: Sequence[str]) -> np.ndarray:
        """Dense indices in the same order; items never seen in training carry no signal and are dropped."""
        index = self.index
        return np.fromiter((index[i] for i in items if i in index), dtype=np.int64)


@dataclass(frozen=True)
class Csr:
    """Rows of integer values (e.g. the items of each session) packed as offsets + one flat array."""

    offsets: np.ndarray
    values: np.ndarray

    @classmethod
    def from_rows(cls, rows: Sequence[np.ndarray]) -> Csr:
        lengths = np.fromiter((len(r) for r in rows), dtype=np.int64, count=len(rows))
        offsets = np.zeros(len(rows) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        values = np.concatenate(rows) if rows else np.zeros(0, dtype=np.int64)
        return cls(offsets, values.astype(np.int64, copy=False))

    @classmethod
    def transpose_of(cls, rows: Csr, n_columns: int) -> Csr:
        """Column -> rows holding it, each list ascending (a stable sort keeps the row order)."""
        row_of_value = np.repeat(np.arange(rows.n_rows), rows.lengths)
        order = np.argsort(rows.values, kind="stable")
        offsets = np.zeros(n_columns + 1, dtype=np.int64)
        np.cumsum(np.bincount(rows.values, minlength=n_columns), out=offsets[1:])
        return cls(offsets, row_of_value[order])

    @property
    def n_rows(self) -> int:
        return len(self.offsets) - 1

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def gather(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The concatenated values of `rows` and each row's length, without a Python loop."""
        starts = self.offsets[rows]
        lengths = self.offsets[rows + 1] - starts
        shift = np.repeat(starts - (np.cumsum(lengths) - lengths), lengths)
        return self.values[shift + np.arange(int(lengths.sum()))], lengths


def top_indices(candidates: np.ndarray, scores: np.ndarray, k: int, n_items: int) -> np.ndarray:
    """Best k item indices: by score, ties by index (= popularity, then id), then popularity fill.

    Only scored candidates are sorted; every unscored item ties at 0 and so follows in index order,
    which is exactly the POP ranking minus the items already placed.
    """
    k = min(k, n_items)
    positive = scores > 0
    candidates, scores = candidates[positive], scores[positive]
    best = candidates[np.lexsort((candidates, -scores))[:k]]
    missing = k - len(best)
    if missing == 0:
        return best
    # The first k + len(best) indices always contain `missing` untaken ones.
    window = np.ones(min(n_items, k + len(best)), dtype=bool)
    window[best[best < len(window)]] = False
    return np.concatenate([best, np.flatnonzero(window)[:missing]])


def session_items(catalogue: Catalogue, sessions: Sequence[Sequence[str]]) -> Csr:
    """Each session's distinct items (the set view all the kNN similarities use)."""
    return Csr.from_rows([np.unique(catalogue.encode(s)) for s in sessions])


class ScoringRanker:
    """Shared plumbing: a subclass only says how a prefix scores the catalogue (`_score`)."""

    name: str = "scoring"

    def __init__(self) -> None:
        self._catalogue: Catalogue | None = None

    @property
    def catalogue(self) -> Catalogue:
        if self._catalogue is None:
            raise RuntimeError(f"{self.name}: call fit() before topk()")
        return self._catalogue

    def fit(self, train_sessions: list[list[str]]) -> None:
        self._catalogue = Catalogue.from_sessions(train_sessions)
        self._fit(train_sessions)

    def _fit(self, train_sessions: list[list[str]]) -> None:
        """Model-specific statistics; the catalogue is already built."""

    def _score(self, prefix: np.ndarray) -> Scores:
        raise NotImplementedError

    def topk(self, prefixes: Sequence[Sequence[str]], k: int) -> list[list[str]]:
        catalogue = self.catalogue
        n = len(catalogue)
        out: list[list[str]] = []
        for prefix in prefixes:
            encoded = catalogue.encode(prefix)
            candidates, scores = self._score(encoded) if len(encoded) else _NO_SCORES
            out.append(catalogue.items[top_indices(candidates, scores, k, n)].tolist())
        return out


_NO_SCORES: Scores = (np.zeros(0, dtype=np.int64), np.zeros(0))


class Pop(ScoringRanker):
    """Most clicked items overall, whatever the session: the floor every model must clear."""

    name = "POP"

    def _score(self, prefix: np.ndarray) -> Scores:
        return _NO_SCORES


class SessionPop(ScoringRanker):
    """Items of the session by how often it clicked them, then POP: strong because people re-view items."""

    name = "S-POP"

    def _score(self, prefix: np.ndarray) -> Scores:
        items, counts = np.unique(prefix, return_counts=True)
        return items, counts.astype(np.float64)


class ItemKNN(ScoringRanker):
    """Items most similar to the LAST clicked one, cosine over binary session-occurrence vectors.

    sim(i, j) = |sessions with i and j| / sqrt(|sessions with i| * |sessions with j|), with sim(i, i)
    left out: an item is not its own neighbour (re-views are S-POP's job).
    """

    name = "Item-KNN"

    def __init__(self) -> None:
        super().__init__()
        self._neighbours: Csr | None = None
        self._sims = np.zeros(0)

    def _fit(self, train_sessions: list[list[str]]) -> None:
        sessions = session_items(self.catalogue, train_sessions)
        n = len(self.catalogue)
        # Every ordered pair of distinct items sharing a session, as one int64 key per pair.
        left = np.repeat(sessions.values, np.repeat(sessions.lengths, sessions.lengths))
        right, _ = sessions.gather(np.repeat(np.arange(sessions.n_rows), sessions.lengths))
        distinct = left != right
        keys, together = np.unique(left[distinct] * n + right[distinct], return_counts=True)
        rows, cols = keys // n, keys % n
        occurrences = np.bincount(sessions.values, minlength=n).astype(np.float64)
        offsets = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(np.bincount(rows, minlength=n), out=offsets[1:])
        self._neighbours = Csr(offsets, cols)
        self._sims = together / np.sqrt(occurrences[rows] * occurrences[cols])

    def _score(self, prefix: np.ndarray) -> Scores:
        assert self._neighbours is not None
        last = int(prefix[-1])
        start, end = self._neighbours.offsets[last], self._neighbours.offsets[last + 1]
        return self._neighbours.values[start:end], self._sims[start:end]


Decay = Callable[[int], np.ndarray]
"""Weights of a prefix's n positions, oldest first (V-SKNN's emphasis on recent clicks)."""


def linear_decay(n: int) -> np.ndarray:
    """The last click weighs 1 and each older one 0.1 less, down to 0: only the last 10 clicks count.

    This is session-rec's `linear` weighting (without its cut-off quirk for sessions over 10 clicks).
    """
    return np.clip(1.0 - 0.1 * np.arange(n - 1, -1, -1, dtype=np.float64), 0.0, None)


class SessionKNN(ScoringRanker):
    """SKNN: score items by the similar past sessions that contain them (Jannach & Ludewig 2017).

    Neighbours are the k most similar among the `sample_size` most recent training sessions sharing an
    item with the prefix (file order stands in for time, as the data has no timestamps). Sampling keeps
    the cost bounded for prefixes with very popular items and, as in session-rec, favours recent sessions.
    An item's score is the summed similarity of the neighbours holding it.

    Without `decay`, similarity is the cosine of the two item sets. With `decay` this is a simplified
    V-SKNN: similarity is session-rec's vector similarity, the decay weights (of each shared item's
    last position in the prefix) summed and divided by the number of distinct prefix items, so sessions
    matching the latest clicks win. Unlike the cosine it does not penalise long neighbour sessions.
    """

    def __init__(self, k: int = 100, sample_size: int = 1000, decay: Decay | None = None) -> None:
        super().__init__()
        self.k, self.sample_size, self.decay = k, sample_size, decay
        prefix = "V-SKNN" if decay else "SKNN"
        self.name = f"{prefix}(k={k})"
        self._sessions: Csr | None = None
        self._sessions_of_item: Csr | None = None

    def _fit(self, train_sessions: list[list[str]]) -> None:
        self._sessions = session_items(self.catalogue, train_sessions)
        self._sessions_of_item = Csr.transpose_of(self._sessions, len(self.catalogue))

    def _prefix_weights(self, prefix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Distinct prefix items and their weight (1, or the decay weight of the item's last position)."""
        if self.decay is None:
            items = np.unique(prefix)
            return items, np.ones(len(items))
        weights = self.decay(len(prefix))
        # np.unique keeps the first occurrence, so search the reversed prefix for the last one.
        items, first_in_reversed = np.unique(prefix[::-1], return_index=True)
        return items, weights[::-1][first_in_reversed]

    def _neighbours(self, prefix: np.ndarray) -> Scores:
        assert self._sessions is not None and self._sessions_of_item is not None
        items, weights = self._prefix_weights(prefix)
        postings, counts = self._sessions_of_item.gather(items)
        candidates, inverse = np.unique(postings, return_inverse=True)
        overlap = np.bincount(inverse, weights=np.repeat(weights, counts), minlength=len(candidates))
        if len(candidates) > self.sample_size:  # ids ascend, so the tail is the most recent sessions
            candidates, overlap = candidates[-self.sample_size :], overlap[-self.sample_size :]
        if self.decay is None:
            sims = overlap / np.sqrt(self._sessions.lengths[candidates] * len(items))
        else:
            sims = overlap / len(items)
        # Most similar first; equal similarity -> the more recent session.
        chosen = np.lexsort((-candidates, -sims))[: self.k]
        return candidates[chosen], sims[chosen]

    def _score(self, prefix: np.ndarray) -> Scores:
        assert self._sessions is not None
        neighbours, sims = self._neighbours(prefix)
        items, lengths = self._sessions.gather(neighbours)
        unique_items, inverse = np.unique(items, return_inverse=True)
        scores = np.bincount(inverse, weights=np.repeat(sims, lengths), minlength=len(unique_items))
        return unique_items, scores


def default_baselines() -> list[SessionRanker]:
    """The model card's set, weakest first, with the settings baselines_measured.json was produced with."""
    return [
        Pop(),
        SessionPop(),
        ItemKNN(),
        SessionKNN(k=100),
        SessionKNN(k=100, decay=linear_decay),
    ]
