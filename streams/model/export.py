"""ONNX export of a trained `SessionNet` into an artifact directory: `model.onnx` (the window
graph), `step.onnx` (the step graph) and `metadata.json`.

The export is only accepted after parity checks: ONNX Runtime and PyTorch must agree within 1e-4 on
random inputs and on real ones from the training data, so what was validated is what is served; and
the step graph run on the window graph's state must give the window graph's answer.

A repeat-aware net's graphs name the repeat head's gate logit and attention inside them
(`ann.GATE_NAME`, `ann.ATTENTION_NAME`; not outputs), so that a large catalogue's index can serve the
mixture from a cut of the graph (`streams.model.ann`).
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import torch

from streams.model import ann
from streams.model.features import (
    EVENT_KINDS,
    INPUT_NAMES,
    OUTPUT_NAMES,
    RESERVED,
    STEP_INPUT_NAMES,
    STEP_OUTPUT_NAMES,
    WINDOW_OUTPUT_NAMES,
    FeaturizerConfig,
    ItemVocab,
)
from streams.model.net import ExportWrapper, Readout, SessionNet, StepWrapper
from streams.model.runtime import FORMAT, METADATA_FILE, MODEL_FILE, STEP_FILE

OPSET = 17
PARITY_TOLERANCE = 1e-4
# Logits may also differ by this share of their size: a repeat-aware graph adds a log-sum-exp over
# the whole catalogue to the newest events' items, a float32 sum whose order differs between the two
# runtimes (1.9e-4 on logits near 20 for 43,097 items).
PARITY_RELATIVE = 1e-5
REPEAT_TENSORS = (ann.GATE_NAME, ann.ATTENTION_NAME)  # named inside a repeat-aware net's graphs


def _logits_beyond(got: np.ndarray, ref: np.ndarray) -> bool:
    """Whether any logit differs by more than PARITY_TOLERANCE + PARITY_RELATIVE * |reference|."""
    return bool((np.abs(got - ref) > PARITY_TOLERANCE + PARITY_RELATIVE * np.abs(ref)).any())


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
    repeat = model.config.repeat
    wrapper = (_RepeatWindowWrapper if repeat else ExportWrapper)(model).eval()
    example = random_inputs(model, batch=2, seed=0)
    path = out_dir / MODEL_FILE
    tmp = out_dir / f".{MODEL_FILE}.tmp"
    _export(
        wrapper,
        tuple(torch.from_numpy(example[name]) for name in INPUT_NAMES),
        tmp,
        INPUT_NAMES,
        WINDOW_OUTPUT_NAMES,
        {
            **{name: {0: "batch", 1: "time"} for name in INPUT_NAMES},
            **{name: {0: "batch"} for name in WINDOW_OUTPUT_NAMES},
        },
        repeat,
    )
    onnx_bytes = tmp.read_bytes()
    step_tmp = out_dir / f".{STEP_FILE}.tmp"
    state = torch.zeros(2, model.config.state_size)
    _export(
        (_RepeatStepWrapper if repeat else StepWrapper)(model).eval(),
        (state, *(torch.from_numpy(example[name][:, : model.config.attend]) for name in INPUT_NAMES)),
        step_tmp,
        STEP_INPUT_NAMES,
        STEP_OUTPUT_NAMES,
        {
            "state": {0: "batch"},
            **{name: {0: "batch", 1: "time"} for name in INPUT_NAMES},
            **{name: {0: "batch"} for name in STEP_OUTPUT_NAMES},
        },
        repeat,
    )
    step_bytes = step_tmp.read_bytes()
    parity = {"random": check_parity(model, onnx_bytes, random_inputs(model, batch=64, seed=1))}
    if real_inputs is not None:
        parity["real"] = check_parity(model, onnx_bytes, real_inputs)
    parity["step"] = check_step_parity(model, onnx_bytes, step_bytes, random_inputs(model, batch=64, seed=2))
    if real_inputs is not None:
        parity["step_real"] = check_step_parity(model, onnx_bytes, step_bytes, real_inputs)
    os.replace(tmp, path)
    os.replace(step_tmp, out_dir / STEP_FILE)

    metadata: dict[str, Any] = {
        "format": FORMAT,
        "version": artifact_version(onnx_bytes + step_bytes, vocab.ids),
        "command": command,
        "model": {
            "file": MODEL_FILE,
            "sha256": hashlib.sha256(onnx_bytes).hexdigest(),
            "bytes": len(onnx_bytes),
            "opset": OPSET,
            "architecture": "GRU + attention readout, NISER-normalised tied item embeddings (SessionNet)",
            "net": model.config.to_dict(),
        },
        "serving": {
            "mode": "step",
            "step_file": STEP_FILE,
            "step_sha256": hashlib.sha256(step_bytes).hexdigest(),
            "state_size": model.config.state_size,
            "attend": model.config.attend,
        },
        "inputs": [
            {"name": name, "dtype": "int64", "shape": ["batch", "time"], "max_time": featurizer.window}
            for name in INPUT_NAMES
        ],
        "outputs": [
            {"name": "logits", "dtype": "float32", "shape": ["batch", len(vocab)]},
            {"name": "intent", "dtype": "float32", "shape": ["batch"]},
            {"name": "state", "dtype": "float32", "shape": ["batch", model.config.state_size]},
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


class _NamesRepeatTensors:
    """Mixin for an export wrapper of a repeat-aware net: the graph also returns the repeat head's
    gate logit and attention, so that the exporter gives those tensors names (`REPEAT_TENSORS`)."""

    def answer(self, readout: Readout, items: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        self.repeat_tensors = (readout.gate, readout.attention)
        return super().answer(readout, items)  # type: ignore[misc]

    def forward(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        outputs = super().forward(*inputs)  # type: ignore[misc]
        return (*outputs, *self.repeat_tensors)


class _RepeatWindowWrapper(_NamesRepeatTensors, ExportWrapper):
    pass


class _RepeatStepWrapper(_NamesRepeatTensors, StepWrapper):
    pass


def _export(
    module: torch.nn.Module,
    example: tuple[torch.Tensor, ...],
    path: Path,
    inputs: tuple[str, ...],
    outputs: tuple[str, ...],
    axes: dict[str, dict[int, str]],
    repeat: bool = False,
) -> None:
    """`repeat`: the module also returns `REPEAT_TENSORS`; they are named, then made internal
    tensors again, so the graph's outputs are `outputs` whatever the net."""
    named = REPEAT_TENSORS if repeat else ()
    if repeat:
        axes = {**axes, ann.GATE_NAME: {0: "batch"}, ann.ATTENTION_NAME: {0: "batch", 1: "time"}}
    with warnings.catch_warnings():
        # The TorchScript exporter is deprecated in favour of dynamo, which needs onnxscript and does
        # not yet export nn.GRU cleanly; this path is well tested for our ops.
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module,
            example,
            str(path),
            dynamo=False,
            opset_version=OPSET,
            input_names=list(inputs),
            output_names=[*outputs, *named],
            dynamic_axes=axes,
        )
    if named:
        exported = onnx.load(str(path))
        internal = [output for output in exported.graph.output if output.name in named]
        for output in internal:
            exported.graph.output.remove(output)
        exported.graph.value_info.extend(internal)  # their types stay on record
        onnx.save(exported, str(path))


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
        ref = model.eval()(*(torch.from_numpy(inputs[k]) for k in INPUT_NAMES))
        ref = ref[0], torch.sigmoid(ref[1])
    diff = {
        "logits": float(np.abs(logits[:, RESERVED:] - ref[0].numpy()[:, RESERVED:]).max()),
        "intent": float(np.abs(intent - ref[1].numpy()).max()),
        "rows": len(intent),
    }
    beyond = _logits_beyond(logits[:, RESERVED:], ref[0].numpy()[:, RESERVED:])
    if beyond or diff["intent"] > PARITY_TOLERANCE:
        raise RuntimeError(f"ONNX Runtime and PyTorch disagree beyond {PARITY_TOLERANCE}: {diff}")
    return diff


def check_step_parity(
    model: SessionNet, window_bytes: bytes, step_bytes: bytes, inputs: dict[str, np.ndarray]
) -> dict[str, float]:
    """Max absolute difference between the window graph on whole histories and the step graph run on
    the window graph's state after all but the last event (all zeros for a first event); raises
    above the tolerance."""
    window = ort.InferenceSession(window_bytes, providers=["CPUExecutionProvider"])
    step = ort.InferenceSession(step_bytes, providers=["CPUExecutionProvider"])
    lengths = (inputs["kinds"] > 0).sum(1)
    whole = {k: inputs[k] for k in INPUT_NAMES}
    full = dict(zip(WINDOW_OUTPUT_NAMES, window.run(list(WINDOW_OUTPUT_NAMES), whole), strict=True))
    before = {k: v.copy() for k, v in whole.items()}
    for name in INPUT_NAMES:
        before[name][np.arange(len(lengths)), np.maximum(lengths - 1, 0)] = 0
    carried = window.run([WINDOW_OUTPUT_NAMES[-1]], before)[0]
    carried[lengths <= 1] = 0.0
    attend = model.config.attend
    tail = {name: np.zeros((len(lengths), attend), dtype=np.int64) for name in INPUT_NAMES}
    for row, n in enumerate(lengths):
        lo = max(0, n - attend)
        for name in INPUT_NAMES:
            tail[name][row, : n - lo] = inputs[name][row, lo:n]
    stepped = step.run(list(STEP_OUTPUT_NAMES), {"state": carried.astype(np.float32), **tail})
    diff = {
        "logits": float(np.abs(stepped[0][:, RESERVED:] - full["logits"][:, RESERVED:]).max()),
        "intent": float(np.abs(stepped[1] - full["intent"]).max()),
        "state": float(np.abs(stepped[2] - full["state"]).max()),
        "rows": len(lengths),
    }
    beyond = _logits_beyond(stepped[0][:, RESERVED:], full["logits"][:, RESERVED:])
    if beyond or max(diff["intent"], diff["state"]) > PARITY_TOLERANCE:
        raise RuntimeError(f"step and window graphs disagree beyond {PARITY_TOLERANCE}: {diff}")
    return diff
