"""Ranking metrics on hand-computed ranks, and the top-list -> rank conversion."""

from __future__ import annotations

import math

import numpy as np
import pytest

from streams.model.metrics import METRICS, format_table, ranking_metrics, ranks_from_topk


def test_metrics_on_hand_computed_ranks() -> None:
    # inf and 0 both mean "not in the top list".
    ranks = np.array([1, 2, 10, 11, 20, 21, np.inf, 0])
    m = ranking_metrics(ranks)
    assert list(m) == list(METRICS)
    assert m["HR@10"] == pytest.approx(100 * 3 / 8)
    assert m["HR@20"] == pytest.approx(100 * 5 / 8)
    assert m["MRR@10"] == pytest.approx(100 * (1 + 1 / 2 + 1 / 10) / 8)
    assert m["MRR@20"] == pytest.approx(100 * (1 + 1 / 2 + 1 / 10 + 1 / 11 + 1 / 20) / 8)
    ndcg = sum(1 / math.log2(r + 1) for r in (1, 2, 10, 11, 20)) / 8
    assert m["NDCG@20"] == pytest.approx(100 * ndcg)


def test_perfect_and_empty_rankings() -> None:
    assert ranking_metrics(np.ones(5)) == pytest.approx(dict.fromkeys(METRICS, 100.0))
    assert ranking_metrics(np.full(3, np.inf)) == pytest.approx(dict.fromkeys(METRICS, 0.0))
    with pytest.raises(ValueError):
        ranking_metrics(np.array([]))


def test_ranks_from_topk() -> None:
    topk = [["a", "b", "c"], ["a", "b", "c"], ["x", "x"], []]
    ranks = ranks_from_topk(topk, ["c", "z", "x", "a"])
    np.testing.assert_array_equal(ranks, [3, np.inf, 1, np.inf])
    with pytest.raises(ValueError):
        ranks_from_topk(topk, ["a"])


def test_format_table_aligns_rows_with_two_decimals() -> None:
    rows = {
        "POP": dict.fromkeys(METRICS, 0.9312),
        "a-much-longer-name": {**dict.fromkeys(METRICS, 49.625), "secs": 25.61},
    }
    lines = format_table(rows).splitlines()
    assert len({len(line) for line in lines}) == 1  # every line equally wide
    assert lines[0].split() == ["method", *METRICS, "secs"]
    assert lines[2].split() == ["POP", "0.93", "0.93", "0.93", "0.93", "0.93", "-"]
    assert lines[3].split()[1:] == ["49.62", "49.62", "49.62", "49.62", "49.62", "25.6"]
