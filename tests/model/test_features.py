"""The featurizer shared by training and serving (pure numpy, no model needed)."""

from __future__ import annotations

import random
from collections import Counter

import numpy as np
import pytest

from streams.model.features import (
    EVENT_KINDS,
    INPUT_NAMES,
    RESERVED,
    SESSION_START_BUCKET,
    UNKNOWN,
    Featurizer,
    FeaturizerConfig,
    ItemVocab,
    gap_bucket,
    history_of,
    kind_index,
    views,
)


def _history(n: int, start: int = 0) -> list[tuple[str | None, str, int]]:
    return [(f"sku-{i % 7}", "view" if i % 3 else "add_to_cart", 1_000 * (start + i)) for i in range(n)]


def test_vocab_reserves_padding_and_unknown() -> None:
    vocab = ItemVocab.from_counts(Counter({"b": 3, "a": 3, "c": 5, "rare": 1}), min_count=2)
    assert vocab.ids == ["c", "a", "b"]  # most frequent first, ties by id
    assert [vocab.index(i) for i in ("c", "a", "b")] == [RESERVED, RESERVED + 1, RESERVED + 2]
    assert vocab.index("rare") == UNKNOWN and vocab.index(None) == UNKNOWN
    assert len(vocab) == 3 + RESERVED
    assert vocab.item(RESERVED) == "c"
    with pytest.raises(KeyError):
        vocab.item(0)
    # Tie-break rank follows item ids; reserved indices rank last.
    assert list(vocab.order[RESERVED:]) == [2, 0, 1]
    assert vocab.order[0] > 1_000 and vocab.order[1] > 1_000
    with pytest.raises(ValueError):
        ItemVocab(["x", "x"])


def test_unknown_items_and_kinds() -> None:
    featurizer = Featurizer(ItemVocab(["sku-1"]))
    history = [("sku-1", "view", 0), ("new", "view", 5), (None, "search", 9)]
    items, kinds, gaps = featurizer.encode_one(history)
    assert items.tolist() == [RESERVED, UNKNOWN, UNKNOWN]
    assert kinds.tolist() == [kind_index("view"), kind_index("view"), kind_index("search")]
    assert kind_index("teleport") == EVENT_KINDS.index("other")
    assert gaps[0] == 1  # first event of a history: no previous event


def test_window_truncation_keeps_only_the_last_events() -> None:
    vocab = ItemVocab([f"sku-{i}" for i in range(7)])
    featurizer = Featurizer(vocab, FeaturizerConfig(window=10))
    long = _history(60)
    items, kinds, gaps = featurizer.encode_one(long)
    assert len(items) == 10
    full = featurizer.encode_sequence(long)
    for got, want in zip((items, kinds, gaps), full, strict=True):
        np.testing.assert_array_equal(got, want[-10:])
    # The first visible gap is the real gap to the event before the window, not "first event".
    assert gaps[0] == gap_bucket(1_000, 16) != 1
    batch = featurizer.encode([long, long[:3], []])
    assert batch["items"].shape == (3, 10)
    assert batch["kinds"][1, 3:].tolist() == [0] * 7  # right padding
    assert batch["kinds"][2].tolist() == [0] * 10  # empty history: all padding


def test_serving_cost_is_bounded_by_the_window() -> None:
    featurizer = Featurizer(ItemVocab(["a"]), FeaturizerConfig(window=50))
    assert featurizer.encode([_history(5_000)])["items"].shape == (1, 50)
    with pytest.raises(ValueError):
        FeaturizerConfig(window=51)


def test_gap_buckets_mark_session_starts() -> None:
    assert gap_bucket(0, 16) == 2
    assert gap_bucket(30 * 60 * 1000, 16) < SESSION_START_BUCKET  # exactly 30 min: same session
    assert gap_bucket(30 * 60 * 1000 + 1, 16) == SESSION_START_BUCKET
    assert gap_bucket(10**12, 16) == 16 + 1  # capped at the last bucket
    assert FeaturizerConfig().gap_vocab == 18


def test_determinism_and_helpers() -> None:
    vocab = ItemVocab([f"sku-{i}" for i in range(7)])
    a = Featurizer(vocab).encode([_history(20), _history(3)])
    b = Featurizer(ItemVocab([f"sku-{i}" for i in range(7)])).encode([_history(20), _history(3)])
    for name in a:
        np.testing.assert_array_equal(a[name], b[name])
    assert views(["x", "y"]) == [("x", "view", 0), ("y", "view", 1000)]

    class Recent:
        def __init__(self, item_id: str | None, kind: str, ts: int) -> None:
            self.item_id, self.kind, self.ts = item_id, kind, ts

    assert history_of([Recent("x", "view", 5)]) == [("x", "view", 5)]


def test_a_batch_encodes_each_history_as_encode_one_does() -> None:
    """The batch encoder is vectorised; `encode_one` (what training slices) is the reference."""
    rng = random.Random(4)
    vocab = ItemVocab([f"sku-{i}" for i in range(30)])
    featurizer = Featurizer(vocab, FeaturizerConfig(window=12))
    kinds = ["view", "add_to_cart", "search", "order_placed", "something-else"]
    steps = [0, 1, 999, 1000, 3000, 60_000, 30 * 60_000, 30 * 60_000 + 1, 2**21, 10**10, -5_000]
    histories = []
    for _ in range(300):
        ts = 1_700_000_000_000
        history = []
        for _ in range(rng.choice([0, 1, 2, 5, 12, 13, 40])):
            ts += rng.choice(steps)
            item = rng.choice([None, "unknown-item", *vocab.ids])
            history.append((item, rng.choice(kinds), ts))
        histories.append(history)
    for window in (None, 3, 12):
        for pad_to in (None, 12):
            batch = featurizer.encode(histories, pad_to=pad_to, window=window)
            small = [featurizer.encode(histories[lo : lo + 3], pad_to=12, window=window) for lo in (0, 3)]
            for name in INPUT_NAMES:  # a small batch goes row by row: the same arrays
                assert (
                    np.concatenate([part[name] for part in small])
                    == featurizer.encode(histories[:6], pad_to=12, window=window)[name]
                ).all()
            for row, history in enumerate(histories):
                expected = featurizer.encode_one(history, window)
                for name, values in zip(INPUT_NAMES, expected, strict=True):
                    assert batch[name][row, : len(values)].tolist() == values.tolist(), (row, name)
                    assert not batch[name][row, len(values) :].any()
    assert featurizer.encode([[], []])["items"].shape == (2, 1)
