"""The ONNX runtime behind the core's `Recommender` protocol, and how a worker finds its model."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from streams.core.recommend import Prediction, RecRequest

DEFAULT_MODEL = Path(__file__).resolve().parent.parent / "models" / "onnx" / "default"


def default_model_dir() -> Path | None:
    """`STREAMS_MODEL` (a directory, or `none` to run without a model), else the shipped default."""
    configured = os.environ.get("STREAMS_MODEL")
    if configured is not None:
        return None if configured.lower() in ("", "none") else Path(configured)
    return DEFAULT_MODEL if (DEFAULT_MODEL / "metadata.json").exists() else None


class ModelRecommender:
    """Adapts `OnnxRecommender` (batched ONNX inference) to what the core asks of a model."""

    def __init__(self, artifact_dir: Path | str, threads: int = 1) -> None:
        from streams.model.runtime import OnnxRecommender  # onnxruntime only where a model is used

        self.runtime = OnnxRecommender(artifact_dir, threads=threads)

    @property
    def version(self) -> str:
        return self.runtime.version

    def knows(self, item_id: str) -> bool:
        return item_id in self.runtime.vocab

    def recommend_batch(self, requests: Sequence[RecRequest]) -> list[Prediction]:
        if not requests:
            return []
        k = max(r.k for r in requests)
        raw = self.runtime.recommend(
            [r.history for r in requests],
            k,
            [set(r.exclude) for r in requests],
            carried=[r.carried for r in requests],
            after=[r.after for r in requests],
        )
        return [
            Prediction(p.items[: r.k], p.purchase_intent, p.state) for p, r in zip(raw, requests, strict=True)
        ]

    def swap(self, artifact_dir: Path | str) -> str:
        return self.runtime.swap(artifact_dir)
