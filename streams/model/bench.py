"""Inference throughput of an artifact through `OnnxRecommender`, the class the worker serves with.

One prediction per incoming event is what the stream needs, so throughput is reported as events/s:
rows scored per second, top-20 included, for shoppers with a 1-event history (a new shopper) and
with a full window. A step-mode artifact is timed as the worker serves it: each row comes with the
state the model returned for the shopper's previous event, so a long history should cost what a
short one does; a window-mode artifact reads the whole window on every event.

    python -m streams.model.bench models/onnx/default
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from streams.model.features import EVENT_KINDS, History
from streams.model.runtime import Carried, OnnxRecommender


def generated_histories(recommender: OnnxRecommender, count: int, seed: int, length: int) -> list[History]:
    """`count` shoppers of `length` events each over the artifact's catalogue (mostly views)."""
    rng = np.random.default_rng(seed)
    ids = recommender.vocab.ids
    kinds = list(EVENT_KINDS[1:5])  # view, add_to_cart, remove_from_cart, search
    out: list[History] = []
    for _ in range(count):
        ts = 1_700_000_000_000 + np.cumsum(rng.integers(1_000, 120_000, size=length))
        items = rng.integers(0, len(ids), size=length)
        chosen = rng.choice(len(kinds), size=length, p=[0.85, 0.08, 0.02, 0.05])
        out.append(
            [
                (None if kinds[c] == "search" else ids[i], kinds[c], int(t))
                for i, c, t in zip(items, chosen, ts, strict=True)
            ]
        )
    return out


def inference_throughput(
    artifact_dir: Path | str,
    batch_sizes: Sequence[int] = (1, 16, 64),
    seconds: float = 3.0,
    threads: int = 1,
    k: int = 20,
    seed: int = 0,
    history_lengths: Sequence[int | None] = (1, None),
    rounds: int = 5,
) -> dict[str, Any]:
    """events/s and ms per call at each batch size and history length (None: the model's window),
    on `threads` intra-op threads (default 1). `results` holds the full-window figures by batch
    size, `by_history` every length's.

    Each setting is timed in `rounds` turns of `seconds / rounds`, the settings taken in turn, and
    its median turn is reported: on a shared machine a slow spell then falls on every setting alike
    instead of on one, and the ratio of two settings (a long history against a short one) holds."""
    recommender = OnnxRecommender(artifact_dir, threads=threads)
    pools = {
        length or recommender.window: generated_histories(
            recommender, max(batch_sizes) * 4, seed, length or recommender.window
        )
        for length in history_lengths
    }
    turns: dict[tuple[int, int], list[dict[str, float]]] = {
        (events, size): [] for events in pools for size in batch_sizes
    }
    for _ in range(rounds):
        for (events, size), taken in turns.items():
            taken.append(_throughput(recommender, pools[events], size, seconds / rounds, k))
    by_history: dict[int, dict[int, dict[str, float]]] = {}
    for (events, size), taken in turns.items():
        result = sorted(taken, key=lambda turn: turn["events_per_s"])[len(taken) // 2]
        by_history.setdefault(events, {})[size] = result
        print(
            f"{events:>2}-event history, batch {size:>3}: {result['events_per_s']:>9,.0f} events/s "
            f"({result['ms_per_call']:.2f} ms per call, {threads} thread(s), median of {rounds})"
        )
    return {
        "version": recommender.version,
        "mode": "step" if recommender.steps else "window",
        "threads": threads,
        "window": recommender.window,
        "items": len(recommender.vocab.ids),
        "results": by_history.get(recommender.window, {}),
        "by_history": by_history,
    }


def _throughput(
    recommender: OnnxRecommender, pool: list[History], size: int, seconds: float, k: int
) -> dict[str, float]:
    carried: list[Carried | None] = [None] * len(pool)
    if recommender.steps:  # the state after each shopper's previous event, as its state would hold
        earlier = [i for i, history in enumerate(pool) if len(history) > 1]
        before = recommender.recommend([pool[i][:-1] for i in earlier], k)
        for i, prediction in zip(earlier, before, strict=True):
            carried[i] = prediction.state
    starts = range(0, len(pool) - size + 1, size)
    batches = [(pool[i : i + size], carried[i : i + size]) for i in starts]
    recommender.recommend(batches[0][0], k, carried=batches[0][1])  # warm-up: first run allocates
    calls = 0
    started, cpu_started = time.perf_counter(), time.process_time()
    while True:
        histories, states = batches[calls % len(batches)]
        recommender.recommend(histories, k, carried=states)
        calls += 1
        elapsed = time.perf_counter() - started
        if elapsed >= seconds:
            break
    # the process's CPU time too: on a shared machine the wall clock also counts others' work
    cpu = max(time.process_time() - cpu_started, 1e-9)
    return {
        "events_per_s": calls * size / elapsed,
        "ms_per_call": 1000.0 * elapsed / calls,
        "cpu_events_per_s": calls * size / cpu,
    }


if __name__ == "__main__":
    inference_throughput(sys.argv[1] if len(sys.argv) > 1 else "models/onnx/default")
