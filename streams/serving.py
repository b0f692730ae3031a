"""The ONNX runtime behind the core's `Recommender` protocol, its item embeddings behind the core's
`ItemSpace`, and how a worker finds its model."""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from streams.core.recommend import Prediction, RecRequest

if TYPE_CHECKING:
    from streams.model.embeddings import ItemEmbeddings

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
        self.directory = Path(artifact_dir)
        self._space: EmbeddingSpace | None = None
        self._space_key: tuple[str, Path] | None = None
        self._space_lock = threading.Lock()

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
            [r.exclude for r in requests],
            carried=[r.carried for r in requests],
            after=[r.after for r in requests],
        )
        return [
            Prediction(p.items if len(p.items) <= r.k else p.items[: r.k], p.purchase_intent, p.state)
            for p, r in zip(raw, requests, strict=True)
        ]

    def swap(self, artifact_dir: Path | str) -> str:
        version = self.runtime.swap(artifact_dir)
        self.directory = Path(artifact_dir)
        return version

    def item_space(self) -> EmbeddingSpace:
        """The serving artifact's item embeddings, read from its graph on first use (and again after
        a swap)."""
        from streams.model.embeddings import load_item_embeddings

        with self._space_lock:
            key = (self.version, self.directory)  # during a swap, one may change before the other
            if self._space is None or self._space_key != key:
                self._space = EmbeddingSpace(key[0], load_item_embeddings(key[1]))
                self._space_key = key
            return self._space


class EmbeddingSpace:
    """`streams.core.on_request.ItemSpace` over a model's item embeddings (cosine similarity)."""

    def __init__(self, version: str, embeddings: ItemEmbeddings) -> None:
        self.version = version
        self.embeddings = embeddings

    def __contains__(self, item_id: object) -> bool:
        return item_id in self.embeddings

    def __len__(self) -> int:
        return len(self.embeddings)

    def neighbours(self, item_id: str, k: int, exclude: Sequence[str] = ()) -> list[tuple[str, float]]:
        return self.embeddings.neighbours(item_id, k, exclude)

    def similarities(self, item_id: str, others: Sequence[str]) -> list[float]:
        vector = self.embeddings.vector(item_id)
        return [float(self.embeddings.vector(o) @ vector) if o in self.embeddings else 0.0 for o in others]
