"""The large-catalogue figures of `make bench`: events/s and recall@k of the approximate path.

A catalogue of `items` generated items (`streams.model.catalogue`) around the shipped model's is
served as the worker would serve it (`OnnxRecommender`, one thread, carried states); recall@k is the
share of the exact top k (every item scored) that the served top k holds, over generated shoppers.

    python -m streams.model.ann_bench models/onnx/default 100000
"""

from __future__ import annotations

import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from streams.model import ann
from streams.model.bench import generated_histories, inference_throughput
from streams.model.catalogue import write_large_catalogue
from streams.model.runtime import OnnxRecommender


def index_recall(artifact_dir: Path | str, k: int = 20, shoppers: int = 500, seed: int = 1) -> dict[str, Any]:
    """recall@k of the served top k against exact scoring, and how long the artifact took to load
    (the index built, or read from its cache)."""
    started = time.perf_counter()
    recommender = OnnxRecommender(artifact_dir)
    load_seconds = time.perf_counter() - started
    catalogue = recommender.catalogue
    if catalogue is None:
        raise ValueError(
            f"{artifact_dir}: {len(recommender.vocab.ids):,} items is under {ann.MIN_ITEMS_ENV}="
            f"{ann.min_items():,}: not served from the index"
        )
    histories = generated_histories(recommender, shoppers, seed, recommender.window)
    rows, _ = recommender.score(histories)  # each row's query (and a repeat-aware head's values)
    served = recommender.recommend(histories, k)
    ids = recommender.vocab.ids
    found = [
        len({ids[i] for i in catalogue.exact_top_k(row, k).tolist()} & {item for item, _ in p.items}) / k
        for row, p in zip(rows, served, strict=True)
    ]
    return {"recall": float(np.mean(found)), "shoppers": shoppers, "k": k, "load_seconds": load_seconds}


def large_catalogue_figures(
    base_dir: Path | str, scratch: Path, items: int = 1_000_000, batch: int = 64, seconds: float = 3.0
) -> dict[str, Any]:
    """Generate (or reuse) the catalogue in `scratch`, then measure recall@20 and events/s at `batch`."""
    started = time.perf_counter()
    directory = write_large_catalogue(base_dir, scratch / f"catalogue-{items}", items)
    generate_seconds = time.perf_counter() - started
    recall = index_recall(directory)
    print(f"  recall@{recall['k']} {recall['recall']:.3f} (load and index {recall['load_seconds']:.0f} s)")
    speed = inference_throughput(directory, (batch,), seconds=seconds, history_lengths=(None,))
    return {
        "items": items,
        "batch": batch,
        "events_per_s": speed["results"][batch]["events_per_s"],
        "cpu_events_per_s": speed["results"][batch]["cpu_events_per_s"],
        "recall_at_20": recall["recall"],
        "generate_seconds": round(generate_seconds, 1),
        "load_seconds": round(recall["load_seconds"], 1),
        "index": asdict(ann.IndexParams()),
    }


if __name__ == "__main__":
    base = sys.argv[1] if len(sys.argv) > 1 else "models/onnx/default"
    size = int(sys.argv[2]) if len(sys.argv) > 2 else 1_000_000
    print(large_catalogue_figures(base, Path(".cache") / "bench", size))
