"""`OnnxRecommender`: the one class that serves the model (stream, replay, predict, evaluate, bench).

It loads an artifact directory (`model.onnx` + `metadata.json`), featurizes many histories at once
with the shared featurizer and runs one ONNX Runtime call per batch. No torch here.

Hot swap: everything one artifact needs (session, vocabulary, featurizer, metadata) lives in one
immutable `_Loaded` object. `recommend` reads the reference once, so a batch that started on the old
artifact finishes on it; `swap` builds the new object completely before one attribute assignment
publishes it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from streams.model.features import (
    INPUT_NAMES,
    OUTPUT_NAMES,
    RESERVED,
    Featurizer,
    FeaturizerConfig,
    History,
    ItemVocab,
    views,
)

MODEL_FILE = "model.onnx"
# Sequence widths a batch is padded to (then the full window). Each width present in a batch costs
# a graph call of its own, and a live round holds a few events: fewer widths, fewer calls, at the
# price of padding short histories further (the graph is causal and masked: same answers).
WIDTH_BUCKETS = (16, 32)
METADATA_FILE = "metadata.json"
FORMAT = "streams-onnx/1"


@dataclass(frozen=True, slots=True)
class Prediction:
    items: list[tuple[str, float]]  # (item id, probability over the catalogue), best first
    purchase_intent: float


@dataclass(frozen=True, slots=True)
class _Loaded:
    directory: Path
    session: ort.InferenceSession
    vocab: ItemVocab
    featurizer: Featurizer
    metadata: dict[str, Any] = field(repr=False)

    @property
    def version(self) -> str:
        return str(self.metadata["version"])


def _load(artifact_dir: Path | str, threads: int) -> _Loaded:
    directory = Path(artifact_dir)
    metadata = json.loads((directory / METADATA_FILE).read_text(encoding="utf-8"))
    if metadata.get("format") != FORMAT:
        raise ValueError(f"{directory}: unsupported artifact format {metadata.get('format')!r}")
    options = ort.SessionOptions()
    # One intra-op thread by default: the worker runs one partition per process, and batching, not
    # threads, is what buys throughput there.
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.log_severity_level = 3
    # ONNX Runtime's CPU arena keeps, for the life of the session, what the largest batch ever
    # needed: one backlog batch after a restart (256 events of long histories) pinned ~70 MiB in a
    # worker for good. Plain allocations cost nothing measurable at our batch sizes.
    options.enable_cpu_mem_arena = False
    session = ort.InferenceSession(
        str(directory / metadata["model"]["file"]), sess_options=options, providers=["CPUExecutionProvider"]
    )
    names = tuple(i.name for i in session.get_inputs()), tuple(o.name for o in session.get_outputs())
    if names != (INPUT_NAMES, OUTPUT_NAMES):
        raise ValueError(
            f"{directory}: graph has inputs/outputs {names}, expected {(INPUT_NAMES, OUTPUT_NAMES)}"
        )
    vocab = ItemVocab(metadata["vocabulary"]["items"])
    featurizer = Featurizer(vocab, FeaturizerConfig.from_dict(metadata["featurizer"]))
    return _Loaded(directory, session, vocab, featurizer, metadata)


class OnnxRecommender:
    """Batched next-item recommendations and purchase intent from an exported artifact."""

    def __init__(self, artifact_dir: Path | str, threads: int = 1) -> None:
        self.threads = threads
        self._loaded = _load(artifact_dir, threads)

    @property
    def version(self) -> str:
        return self._loaded.version

    @property
    def metadata(self) -> dict[str, Any]:
        return self._loaded.metadata

    @property
    def vocab(self) -> ItemVocab:
        return self._loaded.vocab

    @property
    def window(self) -> int:
        return self._loaded.featurizer.config.window

    def swap(self, artifact_dir: Path | str) -> str:
        """Load another artifact, then publish it atomically. Returns the new version."""
        loaded = _load(artifact_dir, self.threads)  # fails here, before anything changes
        self._loaded = loaded
        return loaded.version

    def score(self, histories: Sequence[History]) -> tuple[np.ndarray, np.ndarray]:
        """Raw graph outputs: logits [batch, vocab] (reserved columns included) and intent [batch]."""
        return self._run(self._loaded, histories)

    def recommend(
        self,
        histories: Sequence[History],
        k: int,
        exclude: Sequence[set[str]] | None = None,
    ) -> list[Prediction]:
        """Top-k items (best first, ties by item id) and purchase intent for each history.

        `exclude[i]` is removed from row i before the top-k, so a row still gets k items when the
        catalogue allows. Item scores are probabilities under the model's softmax over the whole
        catalogue (before exclusion).
        """
        if exclude is not None and len(exclude) != len(histories):
            raise ValueError(f"{len(exclude)} exclude sets for {len(histories)} histories")
        if not histories:
            return []
        loaded = self._loaded  # one read: the whole batch uses one artifact even if swap() runs now
        logits, intent = self._run(loaded, histories)
        scores = logits[:, RESERVED:]
        # Softmax over real items only. Ranking uses the logits (same order); only the k winners are
        # exponentiated, so a 40k-item catalogue costs one float32 pass per row, not a float64 one.
        peak = scores.max(axis=1, keepdims=True)
        log_norm = (peak + np.log(np.exp(scores - peak).sum(axis=1, keepdims=True))).astype(np.float64)
        order = loaded.vocab.order[RESERVED:]
        out: list[Prediction] = []
        for row in range(len(histories)):
            values = scores[row]
            banned = exclude[row] if exclude is not None else None
            if banned:
                values = values.copy()
                values[np.array(loaded.vocab.known_indices(banned), dtype=np.int64) - RESERVED] = -np.inf
            top = _top_k(values, order, k)
            probabilities = np.exp(values[top].astype(np.float64) - log_norm[row, 0])
            ids = loaded.vocab.ids  # plain Python ints and floats: numpy scalars are slow to index with
            items = [(ids[i], p) for i, p in zip(top.tolist(), probabilities.tolist(), strict=True)]
            out.append(Prediction(items=items, purchase_intent=float(intent[row])))
        return out

    @staticmethod
    def _run(loaded: _Loaded, histories: Sequence[History]) -> tuple[np.ndarray, np.ndarray]:
        # Bit-identical answers whatever the batch: a replay batches differently from a live worker and
        # must still give the same ids and scores. ONNX Runtime's kernels give a row the same floats
        # only when the shapes are the same. So a row's width is chosen by its own length alone (the
        # smallest bucket that holds it: short histories stay cheap), rows of one width run together,
        # and every group has an even number of rows: the matrix kernels take rows in pairs, and an
        # odd last row goes a one-row path whose sums differ in the last bit.
        window = loaded.featurizer.config.window
        if not histories:
            logits, intent = loaded.session.run(list(OUTPUT_NAMES), loaded.featurizer.encode([[], []]))
            return logits[:0], intent[:0]
        buckets = [b for b in WIDTH_BUCKETS if b < window] + [window]
        groups: dict[int, list[int]] = {}
        for index, history in enumerate(histories):
            length = min(len(history), window)
            groups.setdefault(next(b for b in buckets if b >= length), []).append(index)
        logits: np.ndarray | None = None
        intent: np.ndarray | None = None
        for width, members in sorted(groups.items()):
            rows = [histories[i] for i in members]
            if len(rows) % 2:
                rows.append([])
            inputs = loaded.featurizer.encode(rows, pad_to=width)
            part_logits, part_intent = loaded.session.run(list(OUTPUT_NAMES), inputs)
            if logits is None or intent is None:
                logits = np.empty((len(histories), part_logits.shape[1]), dtype=part_logits.dtype)
                intent = np.empty(len(histories), dtype=part_intent.dtype)
            logits[members] = part_logits[: len(members)]
            intent[members] = part_intent[: len(members)]
        assert logits is not None and intent is not None
        return logits, intent


def _top_k(values: np.ndarray, order: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k best finite values, best first; equal values ordered by item id."""
    n = len(values)
    k = min(k, n)
    if k <= 0:
        return np.zeros(0, dtype=np.int64)
    if k < n:
        threshold = np.partition(values, n - k)[n - k]
        candidates = np.flatnonzero(values >= threshold)
    else:
        candidates = np.arange(n)
    candidates = candidates[np.isfinite(values[candidates])]
    ranked = candidates[np.lexsort((order[candidates], -values[candidates]))]
    return ranked[:k]


class RecommenderRanker:
    """A `SessionRanker` for the evaluation harness: item histories are fed as views."""

    def __init__(self, recommender: OnnxRecommender, name: str = "SessionNet", batch_size: int = 256) -> None:
        self.recommender = recommender
        self.name = name
        self.batch_size = batch_size

    def fit(self, train_sessions: list[list[str]]) -> None:
        """Nothing to do: the artifact was trained offline and is evaluated as it will be served."""

    def topk(self, prefixes: Sequence[Sequence[str]], k: int) -> list[list[str]]:
        out: list[list[str]] = []
        for lo in range(0, len(prefixes), self.batch_size):
            chunk = [views(p) for p in prefixes[lo : lo + self.batch_size]]
            out.extend([item for item, _ in p.items] for p in self.recommender.recommend(chunk, k))
        return out
