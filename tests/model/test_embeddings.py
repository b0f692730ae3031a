from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from streams.model.embeddings import ItemEmbeddings, NoItemTable, load_item_embeddings
from streams.model.runtime import OnnxRecommender

DEFAULT_MODEL = Path(__file__).resolve().parents[2] / "models/onnx/default"


def test_shipped_model_table_has_a_unit_row_per_vocabulary_item() -> None:
    embeddings = load_item_embeddings(DEFAULT_MODEL)
    vocab = OnnxRecommender(DEFAULT_MODEL).vocab
    assert embeddings.ids == vocab.ids
    assert embeddings.vectors.shape == (len(vocab.ids), 100)
    np.testing.assert_allclose(np.linalg.norm(embeddings.vectors, axis=1), 1.0, atol=1e-5)


def test_neighbours_are_ranked_by_cosine_without_the_item_or_excluded_ones() -> None:
    embeddings = load_item_embeddings(DEFAULT_MODEL)
    item = embeddings.ids[0]
    ranked = embeddings.neighbours(item, 10)
    assert len(ranked) == 10 and item not in [i for i, _ in ranked]
    scores = [s for _, s in ranked]
    assert scores == sorted(scores, reverse=True)
    expected = embeddings.vectors @ embeddings.vector(item)
    for other, score in ranked:
        assert score == pytest.approx(float(expected[embeddings.ids.index(other)]), abs=1e-6)
    excluded = embeddings.neighbours(item, 10, exclude={ranked[0][0], "not-an-item"})
    assert ranked[0][0] not in [i for i, _ in excluded]
    assert excluded[0] == ranked[1]


def test_ties_are_broken_by_item_id_and_k_is_capped() -> None:
    vectors = np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 1.0], [0.0, 1.0]], dtype=np.float32)
    embeddings = ItemEmbeddings(["a", "d", "b", "c"], vectors)
    assert [i for i, _ in embeddings.neighbours("d", 2)] == ["b", "c"]
    assert [i for i, _ in embeddings.neighbours("d", 10)] == ["b", "c", "a"]
    assert embeddings.neighbours("d", 0) == []


def test_a_graph_without_an_item_table_is_refused(tmp_path: Path) -> None:
    import onnx
    from onnx import TensorProto, helper

    node = helper.make_node("Identity", ["x"], ["y"])
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
    )
    onnx.save(helper.make_model(graph), str(tmp_path / "model.onnx"))
    (tmp_path / "metadata.json").write_text(
        '{"model": {"file": "model.onnx"}, "vocabulary": {"items": ["a"]}}', encoding="utf-8"
    )
    with pytest.raises(NoItemTable, match="no constant named 'table'"):
        load_item_embeddings(tmp_path)
