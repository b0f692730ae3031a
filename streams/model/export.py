"""ONNX export of a trained `SessionNet` into an artifact directory: `model.onnx` + `metadata.json`.

The export is only accepted after a parity check: ONNX Runtime and PyTorch must agree within 1e-4 on
random inputs and on real ones from the training data, so what was validated is what is served.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import torch

from streams.model.features import (
    EVENT_KINDS,
    INPUT_NAMES,
    OUTPUT_NAMES,
    RESERVED,
    FeaturizerConfig,
    ItemVocab,
)
from streams.model.net import ExportWrapper, SessionNet
from streams.model.runtime import FORMAT, METADATA_FILE, MODEL_FILE

OPSET = 17
PARITY_TOLERANCE = 1e-4


def artifact_version(onnx_bytes: bytes, vocab_ids: list[str]) -> str:
    """Content hash of graph + vocabulary: the same weights with another id mapping is another model."""
    digest = hashlib.sha256(onnx_bytes)
    digest.update(json.dumps(vocab_ids, separators=(",", ":")).encode())
    return digest.hexdigest()[:16]


def export_model(
    model: SessionNet,
    vocab: ItemVocab,
    featurizer: FeaturizerConfig,
    out_dir: Path,
    *,
    real_inputs: dict[str, np.ndarray] | None = None,
    training: dict[str, Any] | None = None,
    metrics: dict[str, Any] | None = None,
    command: str = "",
    intent_trained: bool = True,
) -> dict[str, Any]:
    """Write the artifact and return its metadata. Raises if ONNX Runtime disagrees with PyTorch."""
    out_dir.mkdir(parents=True, exist_ok=True)
    model.eval()
    wrapper = ExportWrapper(model).eval()
    example = random_inputs(model, batch=2, seed=0)
    path = out_dir / MODEL_FILE
    tmp = out_dir / f".{MODEL_FILE}.tmp"
    with warnings.catch_warnings():
        # The TorchScript exporter is deprecated in favour of dynamo, which needs onnxscript and does
        # not yet export nn.GRU cleanly; this path is well tested for our ops.
        warnings.simplefilter("ignore")
        torch.onnx.export(
            wrapper,
            tuple(torch.from_numpy(example[name]) for name in INPUT_NAMES),
            str(tmp),
            dynamo=False,
            opset_version=OPSET,
            input_names=list(INPUT_NAMES),
            output_names=list(OUTPUT_NAMES),
            dynamic_axes={
                **{name: {0: "batch", 1: "time"} for name in INPUT_NAMES},
                "logits": {0: "batch"},
                "intent": {0: "batch"},
            },
        )
    onnx_bytes = tmp.read_bytes()
    parity = {"random": check_parity(model, onnx_bytes, random_inputs(model, batch=64, seed=1))}
    if real_inputs is not None:
        parity["real"] = check_parity(model, onnx_bytes, real_inputs)
    os.replace(tmp, path)

    metadata: dict[str, Any] = {
        "format": FORMAT,
        "version": artifact_version(onnx_bytes, vocab.ids),
        "command": command,
        "model": {
            "file": MODEL_FILE,
            "sha256": hashlib.sha256(onnx_bytes).hexdigest(),
            "bytes": len(onnx_bytes),
            "opset": OPSET,
            "architecture": "GRU + attention readout, NISER-normalised tied item embeddings (SessionNet)",
            "net": model.config.to_dict(),
        },
        "inputs": [
            {"name": name, "dtype": "int64", "shape": ["batch", "time"], "max_time": featurizer.window}
            for name in INPUT_NAMES
        ],
        "outputs": [
            {"name": "logits", "dtype": "float32", "shape": ["batch", len(vocab)]},
            {"name": "intent", "dtype": "float32", "shape": ["batch"]},
        ],
        "featurizer": {
            **featurizer.to_dict(),
            "event_kinds": list(EVENT_KINDS),
            "reserved": {"0": "padding", "1": "unknown item or no item"},
            "padding": "right",
        },
        "vocabulary": {"first_index": RESERVED, "items": vocab.ids},
        "intent_trained": intent_trained,
        "training": training or {},
        "metrics": metrics or {},
        "parity": parity,
    }
    tmp_meta = out_dir / f".{METADATA_FILE}.tmp"
    tmp_meta.write_text(json.dumps(metadata, indent=1, sort_keys=False) + "\n", encoding="utf-8")
    os.replace(tmp_meta, out_dir / METADATA_FILE)
    return metadata


def random_inputs(model: SessionNet, batch: int, seed: int) -> dict[str, np.ndarray]:
    """Right-padded random histories of random lengths (including length 1 and the full window)."""
    cfg = model.config
    rng = np.random.default_rng(seed)
    width = cfg.window
    lengths = rng.integers(1, width + 1, size=batch)
    lengths[0] = width
    lengths[-1] = 1
    inside = np.arange(width)[None, :] < lengths[:, None]
    return {
        "items": np.where(inside, rng.integers(0, cfg.n_items, size=(batch, width)), 0),
        "kinds": np.where(inside, rng.integers(1, cfg.n_kinds, size=(batch, width)), 0),
        "gaps": np.where(inside, rng.integers(1, cfg.n_gaps, size=(batch, width)), 0),
    }


def check_parity(model: SessionNet, onnx_bytes: bytes, inputs: dict[str, np.ndarray]) -> dict[str, float]:
    """Max absolute difference between ONNX Runtime and PyTorch; raises above the tolerance.

    Only the real item columns are compared: the reserved ones are never served.
    """
    session = ort.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
    logits, intent = session.run(list(OUTPUT_NAMES), {k: inputs[k] for k in INPUT_NAMES})
    with torch.no_grad():
        ref = ExportWrapper(model).eval()(*(torch.from_numpy(inputs[k]) for k in INPUT_NAMES))
    diff = {
        "logits": float(np.abs(logits[:, RESERVED:] - ref[0].numpy()[:, RESERVED:]).max()),
        "intent": float(np.abs(intent - ref[1].numpy()).max()),
        "rows": len(intent),
    }
    if max(diff["logits"], diff["intent"]) > PARITY_TOLERANCE:
        raise RuntimeError(f"ONNX Runtime and PyTorch disagree beyond {PARITY_TOLERANCE}: {diff}")
    return diff
