"""Next-item ranking metrics under the SR-GNN protocol (models/onnx/README.md, Diginetica), reported x100.

Rank convention: `ranks[i]` is the 1-based position of case i's target in the ranking; `np.inf` (or 0,
or any value <= 0) means the target is not in the returned top list. Ranks beyond a cut-off simply
count as misses at that cut-off, so one array serves every @k.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

METRICS: tuple[str, ...] = ("HR@10", "HR@20", "MRR@10", "MRR@20", "NDCG@20")


def _normalised(ranks: np.ndarray) -> np.ndarray:
    """Float ranks with every 'not found' spelled np.inf, so 1/rank and rank <= k need no masks."""
    out = np.asarray(ranks, dtype=np.float64).copy()
    out[~(out > 0)] = np.inf  # also catches NaN
    return out


def ranking_metrics(ranks: np.ndarray) -> dict[str, float]:
    """HR@10/20, MRR@10/20 and NDCG@20 (one relevant item: 1/log2(rank+1)), each x100."""
    r = _normalised(ranks)
    if r.size == 0:
        raise ValueError("no cases to score")
    out: dict[str, float] = {}
    for k in (10, 20):
        hit = r <= k
        out[f"HR@{k}"] = 100.0 * float(hit.mean())
        out[f"MRR@{k}"] = 100.0 * float(np.where(hit, 1.0 / r, 0.0).mean())
    hit20 = r <= 20
    out["NDCG@20"] = 100.0 * float(np.where(hit20, 1.0 / np.log2(np.where(hit20, r, 1.0) + 1.0), 0.0).mean())
    return {name: out[name] for name in METRICS}


def ranks_from_topk(topk: Sequence[Sequence[str]], targets: Sequence[str]) -> np.ndarray:
    """1-based rank of each target in its top list, np.inf when absent (first occurrence counts)."""
    if len(topk) != len(targets):
        raise ValueError(f"{len(topk)} top lists for {len(targets)} targets")
    ranks = np.full(len(targets), np.inf)
    for i, (items, target) in enumerate(zip(topk, targets, strict=True)):
        for position, item in enumerate(items, start=1):
            if item == target:
                ranks[i] = position
                break
    return ranks


def format_table(rows: Mapping[str, Mapping[str, float]]) -> str:
    """An aligned text table, one row per method; a `secs` column is added when any row has timing."""
    columns = list(METRICS)
    if any("secs" in row for row in rows.values()):
        columns.append("secs")
    name_width = max([len("method"), *(len(name) for name in rows)])
    widths = [max(len(c), 7) for c in columns]
    header = "  ".join(
        ["method".ljust(name_width), *(c.rjust(w) for c, w in zip(columns, widths, strict=True))]
    )
    lines = [header, "-" * len(header)]
    for name, row in rows.items():
        cells = [_cell(row.get(c), c, w) for c, w in zip(columns, widths, strict=True)]
        lines.append("  ".join([name.ljust(name_width), *cells]))
    return "\n".join(lines)


def _cell(value: float | None, column: str, width: int) -> str:
    if value is None:
        return "-".rjust(width)
    return f"{value:.1f}".rjust(width) if column == "secs" else f"{value:.2f}".rjust(width)
