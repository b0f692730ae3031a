"""Offline next-item evaluation (models/onnx/README.md, Diginetica): fit each ranker, rank every case,
report metrics x100.

Kept free of CLI concerns so the `streams evaluate` command, and a trained ONNX model wrapped as one
more `SessionRanker`, reuse exactly the same protocol as the baselines.

    python -m streams.model.evaluate /path/to/shared/data/diginetica-srgnn
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from streams.model.baselines import SessionRanker, default_baselines
from streams.model.metrics import format_table, ranking_metrics, ranks_from_topk
from streams.model.sessions import Case, read_prefix_targets, read_sessions

TRAIN_FILE = "train_sessions.txt.gz"
TEST_FILE = "test_prefix_target.tsv.gz"


def evaluate_ranker(
    ranker: SessionRanker, train_sessions: list[list[str]], cases: Sequence[Case], k: int = 20
) -> dict[str, float]:
    """Metrics of one ranker plus `secs`, the wall time of fit + ranking (what a re-run would cost)."""
    started = time.perf_counter()
    ranker.fit(train_sessions)
    topk = ranker.topk([prefix for prefix, _ in cases], k)
    secs = time.perf_counter() - started
    result = ranking_metrics(ranks_from_topk(topk, [target for _, target in cases]))
    result["secs"] = secs
    return result


def evaluate_rankers(
    rankers: Sequence[SessionRanker], train_sessions: list[list[str]], cases: Sequence[Case], k: int = 20
) -> dict[str, dict[str, float]]:
    """One row per ranker name, in the given order (the metrics need k >= 20 to be complete)."""
    if k < 20:
        raise ValueError(f"k={k}: HR@20, MRR@20 and NDCG@20 need at least the top 20")
    names = [ranker.name for ranker in rankers]
    if len(set(names)) != len(names):
        raise ValueError(f"ranker names must be unique (they key the table): {names}")
    return {ranker.name: evaluate_ranker(ranker, train_sessions, cases, k) for ranker in rankers}


def run_baselines(data_dir: Path, rankers: Sequence[SessionRanker] | None = None) -> dict:
    """The baseline table on a `diginetica-srgnn`-style folder, shaped like baselines_measured.json."""
    train = read_sessions(Path(data_dir) / TRAIN_FILE)
    cases = read_prefix_targets(Path(data_dir) / TEST_FILE)
    results = evaluate_rankers(list(rankers) if rankers is not None else default_baselines(), train, cases)
    n_items = len({item for session in train for item in session})
    return {"n_items": n_items, "train_sessions": len(train), "test_cases": len(cases), "results": results}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m streams.model.evaluate", description=__doc__.split("\n")[0]
    )
    parser.add_argument("data_dir", type=Path, help=f"folder holding {TRAIN_FILE} and {TEST_FILE}")
    parser.add_argument("--json", type=Path, help="also write the full result here")
    args = parser.parse_args(argv)
    report = run_baselines(args.data_dir)
    sizes = f"{report['train_sessions']} sessions, {report['test_cases']} cases, {report['n_items']} items"
    print(sizes)
    print(format_table(report["results"]))
    if args.json:
        args.json.write_text(json.dumps(report, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
