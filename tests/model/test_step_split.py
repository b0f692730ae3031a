"""The step graph cut into its recurrence and its readout (`streams.model.step_split`)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from streams.model.features import INPUT_NAMES, NEXT_STATE_NAME, STATE_NAME, STEP_OUTPUT_NAMES
from streams.model.runtime import OnnxRecommender
from streams.model.step_split import split_step

DEFAULT_MODEL = Path(__file__).resolve().parents[2] / "models" / "onnx" / "default"


def _session(graph: bytes) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    return ort.InferenceSession(graph, sess_options=options, providers=["CPUExecutionProvider"])


def _feeds(rows: int, seed: int = 3) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    kinds = rng.integers(1, 5, (rows, 10))
    kinds[: rows // 2, 6:] = 0  # some rows with fewer than `attend` events, right-padded
    return {
        STATE_NAME: rng.standard_normal((rows, 110)).astype(np.float32),
        "items": np.where(kinds > 0, rng.integers(2, 2_002, (rows, 10)), 0),
        "kinds": kinds,
        "gaps": np.where(kinds > 0, rng.integers(1, 17, (rows, 10)), 0),
    }


def test_the_parts_answer_as_the_whole_step_graph() -> None:
    graph = onnx.load(str(DEFAULT_MODEL / "step.onnx"))
    whole = _session(graph.SerializeToString())
    split = split_step(graph, STEP_OUTPUT_NAMES, NEXT_STATE_NAME)
    assert split is not None
    assert sum(split.widths) == 110 and split.outputs == ("logits", "intent")
    feeds = _feeds(8)
    logits, intent, state = whole.run(list(STEP_OUTPUT_NAMES), feeds)
    [advanced] = _session(split.advance).run([NEXT_STATE_NAME], feeds)
    np.testing.assert_array_equal(advanced, state)  # the recurrence is the same operators
    tail = {name: feeds[name] for name in INPUT_NAMES}
    read_logits, read_intent = _session(split.readout).run(
        list(split.outputs), {**split.feeds(advanced), **tail}
    )
    np.testing.assert_allclose(read_logits, logits, atol=1e-4, rtol=1e-5)
    np.testing.assert_allclose(read_intent, intent, atol=1e-6)


def test_a_state_not_made_by_a_concat_is_not_cut() -> None:
    graph = onnx.load(str(DEFAULT_MODEL / "step.onnx"))
    _rename_state_output(graph)
    assert split_step(graph, STEP_OUTPUT_NAMES, NEXT_STATE_NAME) is None


def test_a_graph_the_cut_refuses_is_served_whole_with_the_same_answers(tmp_path: Path) -> None:
    """Every wave then runs the whole step graph: the scores are those of the cut serving, up to
    the last bits the operators' fusion moves."""
    copy = tmp_path / "model"
    shutil.copytree(DEFAULT_MODEL, copy)
    graph = onnx.load(str(copy / "step.onnx"))
    _rename_state_output(graph)
    onnx.save(graph, str(copy / "step.onnx"))
    cut, whole = OnnxRecommender(DEFAULT_MODEL), OnnxRecommender(copy)
    assert cut._loaded.step is not None and cut._loaded.step.recurrence is not None
    assert whole._loaded.step is not None and whole._loaded.step.recurrence is None
    vocab = cut.vocab.ids[:40]
    histories = [
        [(item, "view", 1_000 * n) for n, item in enumerate(vocab[i : i + 1 + i % 7])] for i in range(30)
    ]
    expected, got = cut.recommend_streamed(histories, 20), whole.recommend_streamed(histories, 20)
    for a, b in zip(expected, got, strict=True):
        assert abs(a.purchase_intent - b.purchase_intent) < 1e-5
        assert a.state == b.state  # the recurrence is the same operators either way
        scores = dict(b.items)
        top = [item for item, _ in a.items[:10]]
        assert [item for item, _ in b.items[:10]] == top or np.allclose(
            [p for _, p in a.items[:10]], [p for _, p in b.items[:10]], atol=1e-6
        )
        shared = [item for item, _ in a.items if item in scores]
        assert len(shared) >= 18
        np.testing.assert_allclose([dict(a.items)[i] for i in shared], [scores[i] for i in shared], atol=1e-5)


def _rename_state_output(graph: onnx.ModelProto) -> None:
    """The state leaves the graph through an Identity after its Concat: the same values, a shape the
    cut does not know."""
    concat = next(node for node in graph.graph.node if NEXT_STATE_NAME in node.output)
    concat.output[0] = "state_made"
    graph.graph.node.append(onnx.helper.make_node("Identity", ["state_made"], [NEXT_STATE_NAME]))


@pytest.mark.parametrize("rows", [1, 3])
def test_the_readout_feeds_are_the_state_columns(rows: int) -> None:
    split = split_step(onnx.load(str(DEFAULT_MODEL / "step.onnx")), STEP_OUTPUT_NAMES, NEXT_STATE_NAME)
    assert split is not None
    state = np.arange(rows * 110, dtype=np.float32).reshape(rows, 110)
    parts = split.feeds(state)
    np.testing.assert_array_equal(np.concatenate([parts[name] for name in split.parts], axis=1), state)
    assert all(part.flags.c_contiguous for part in parts.values())
