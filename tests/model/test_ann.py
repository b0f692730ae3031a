"""Serving a catalogue from the approximate nearest-neighbour index (`streams.model.ann`).

The shipped model is served both ways: exactly (its 2,000 items are under the default threshold) and
from the index (`ann_min_items=1`), so the index path is checked against exact scoring on a real
model at no cost of a large artifact."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import onnx
import pytest

from streams.model import ann
from streams.model.bench import generated_histories
from streams.model.features import RESERVED, History
from streams.model.runtime import OnnxRecommender
from tests.model.test_runtime import DEFAULT_MODEL


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    folder = tmp_path_factory.mktemp("ann-cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(ann.CACHE_DIR_ENV, str(folder))
        yield folder


@pytest.fixture(scope="module")
def exact() -> OnnxRecommender:
    return OnnxRecommender(DEFAULT_MODEL)


@pytest.fixture(scope="module")
def approx(cache_dir: Path) -> OnnxRecommender:
    return OnnxRecommender(DEFAULT_MODEL, ann_min_items=1)


@pytest.fixture(scope="module")
def histories(exact: OnnxRecommender) -> list[History]:
    """Generated shoppers of 1 to 50 events."""
    return [h[: 1 + i % 50] for i, h in enumerate(generated_histories(exact, 150, seed=5, length=50))]


def _ids(prediction: object) -> list[str]:
    return [item for item, _ in prediction.items]  # type: ignore[attr-defined]


def test_below_the_threshold_the_exact_path_serves(
    monkeypatch: pytest.MonkeyPatch, exact: OnnxRecommender, cache_dir: Path
) -> None:
    assert exact.catalogue is None  # 2,000 items, default threshold 20,000
    monkeypatch.setenv(ann.MIN_ITEMS_ENV, "2001")
    assert OnnxRecommender(DEFAULT_MODEL).catalogue is None
    monkeypatch.setenv(ann.MIN_ITEMS_ENV, "2_000")
    served = OnnxRecommender(DEFAULT_MODEL)
    assert served.catalogue is not None and len(served.catalogue) == 2_000
    monkeypatch.setenv(ann.MIN_ITEMS_ENV, "many")
    with pytest.raises(ValueError, match="STREAMS_ANN_MIN_ITEMS='many'"):
        OnnxRecommender(DEFAULT_MODEL)


def test_the_cut_graph_returns_what_makes_the_logits(
    exact: OnnxRecommender, approx: OnnxRecommender, histories: list[History]
) -> None:
    """The cut rows (the query, and for a repeat-aware model the gate, the return attention and the
    attended items) give every logit of the uncut graph."""
    histories = histories[:32]
    logits, intent = exact.score(histories)
    rows, cut_intent = approx.score(histories)
    catalogue = approx.catalogue
    assert catalogue is not None and rows.shape == (32, catalogue.width)
    for row, full in zip(rows, logits, strict=True):
        assert np.abs(catalogue.exact_scores(row) - full[RESERVED:]).max() <= 1e-4
    assert np.abs(cut_intent - intent).max() <= 1e-6


def test_a_graph_not_ending_in_the_catalogue_product_is_refused() -> None:
    model = onnx.load(str(DEFAULT_MODEL / "model.onnx"))
    producer = next(node for node in model.graph.node if "logits" in node.output)
    producer.op_type = "Gemm"
    with pytest.raises(ValueError, match="not query @ a constant item matrix"):
        ann.cut_graph(model, ("logits", "intent", "state"))


def test_the_index_finds_what_exact_scoring_finds(
    exact: OnnxRecommender, approx: OnnxRecommender, histories: list[History]
) -> None:
    found = approx.recommend(histories, k=20)
    truth = exact.recommend(histories, k=20)
    recall = np.mean([len(set(_ids(a)) & set(_ids(e))) / 20 for a, e in zip(found, truth, strict=True)])
    assert recall >= 0.95
    for a, e in zip(found, truth, strict=True):
        assert a.purchase_intent == pytest.approx(e.purchase_intent, abs=1e-6)
        probabilities = dict(e.items)
        # the normaliser's tail is estimated from a sample: close, not equal
        assert all(p == pytest.approx(probabilities[i], rel=0.05) for i, p in a.items if i in probabilities)


def test_excluded_items_are_dropped_and_k_still_filled(
    approx: OnnxRecommender, histories: list[History]
) -> None:
    history = histories[40]
    [plain] = approx.recommend([history], k=10)
    banned = set(_ids(plain)[:5]) | {"not-in-catalogue"}
    [filtered] = approx.recommend([history], k=10, exclude=[banned])
    assert len(filtered.items) == 10 and not banned & set(_ids(filtered))
    assert _ids(filtered)[:5] == _ids(plain)[5:]
    everything = set(approx.vocab.ids)
    [nearly_all] = approx.recommend([history], k=10, exclude=[everything - {"sku-7", "sku-9"}])
    assert sorted(_ids(nearly_all)) == ["sku-7", "sku-9"]


def test_a_row_finds_the_same_candidates_alone_and_in_a_batch(
    approx: OnnxRecommender, histories: list[History]
) -> None:
    """Rows asking for the same count share one search; each still gets what it gets alone."""
    catalogue = approx.catalogue
    assert catalogue is not None
    rows, _ = approx.score(histories[:48])
    queries = catalogue.queries(rows)
    counts = [160 + (i % 3) * 7 for i in range(48)]  # three groups, and a heap-sized count below
    counts[5] = 12
    batched = catalogue.candidates(queries, counts)
    for query, count, found in zip(queries, counts, batched, strict=True):
        [alone] = catalogue.candidates(query[None, :], [count])
        assert np.array_equal(found, alone) and len(found) == count


def test_answers_are_bit_identical_at_batch_1_and_64(
    approx: OnnxRecommender, histories: list[History]
) -> None:
    histories = histories[:64]
    exclude = [{history[0][0]} - {None} for history in histories]
    batched = approx.recommend(histories, k=20, exclude=exclude)  # type: ignore[arg-type]
    for size in (1, 7):
        chunked = [
            p
            for lo in range(0, 64, size)
            for p in approx.recommend(histories[lo : lo + size], k=20, exclude=exclude[lo : lo + size])  # type: ignore[arg-type]
        ]
        assert chunked == batched, f"batches of {size} differ from one batch of 64"


def test_a_row_ranked_over_every_item_leaves_the_rest_of_its_batch_as_it_was(
    approx: OnnxRecommender, histories: list[History]
) -> None:
    histories = histories[:16]
    exclude: list[set[str]] = [set() for _ in histories]
    exclude[5] = set(approx.vocab.ids) - {"sku-7", "sku-9", "sku-11"}  # its candidates leave too few
    batched = approx.recommend(histories, k=20, exclude=exclude)
    alone = [
        p for h, e in zip(histories, exclude, strict=True) for p in approx.recommend([h], k=20, exclude=[e])
    ]
    assert batched == alone
    assert sorted(_ids(batched[5])) == ["sku-11", "sku-7", "sku-9"]
    assert sum(p for _, p in batched[5].items) < 1.0


def test_stepped_answers_are_bit_identical_at_batch_1_and_64(
    approx: OnnxRecommender, histories: list[History]
) -> None:
    histories = [h for h in histories if len(h) >= 2][:64]
    carried = [p.state for p in approx.recommend([h[:-1] for h in histories], k=20)]
    assert len(histories) == 64 and all(c is not None for c in carried)
    batched = approx.recommend(histories, k=20, carried=carried)
    alone = [
        p for h, c in zip(histories, carried, strict=True) for p in approx.recommend([h], k=20, carried=[c])
    ]
    assert alone == batched
    assert batched != approx.recommend(histories, k=20)  # the step path ran, not the window graph again


def test_the_index_is_the_same_every_build_and_is_read_back_from_its_cache(
    approx: OnnxRecommender, cache_dir: Path, histories: list[History]
) -> None:
    import faiss

    catalogue = approx.catalogue
    assert catalogue is not None
    again = ann.build_index(catalogue.items, ann.IndexParams())
    assert bytes(faiss.serialize_index(again)) == bytes(faiss.serialize_index(catalogue.index))
    [cached] = list(cache_dir.glob(f"ann-{approx.version}-*.faiss"))
    reloaded = OnnxRecommender(DEFAULT_MODEL, ann_min_items=1)
    assert bytes(faiss.serialize_index(reloaded.catalogue.index)) == cached.read_bytes()  # type: ignore[union-attr]
    histories = histories[:16]
    assert reloaded.recommend(histories, k=20) == approx.recommend(histories, k=20)


def test_a_hot_swap_serves_the_new_artifact_from_its_index(cache_dir: Path, histories: list[History]) -> None:
    served = OnnxRecommender(DEFAULT_MODEL, ann_min_items=1)
    before = served.catalogue
    assert served.swap(DEFAULT_MODEL) == served.version
    assert served.catalogue is not None and served.catalogue is not before  # built (or read) anew
    assert served.recommend(histories[:8], k=20) == OnnxRecommender(DEFAULT_MODEL, ann_min_items=1).recommend(
        histories[:8], k=20
    )


def test_the_mixture_gives_the_same_bits_in_a_kept_work_array() -> None:
    """A readout keeps the array of the mixture's terms from call to call: what a call before left
    in it, or how many rows it has, changes no logit and no normaliser."""
    rng = np.random.default_rng(5)
    layout = ann.RepeatLayout(dim=4, events=3)
    work = np.full((64, 50), np.nan, dtype=np.float32)
    for rows in (64, 7, 33):
        explore = rng.standard_normal((rows, 50)).astype(np.float32)
        packed = np.zeros((rows, layout.width), dtype=np.float32)
        packed[:, layout.dim] = rng.standard_normal(rows)  # the gate
        packed[:, layout.dim + 1 : layout.dim + 4] = rng.dirichlet(np.ones(3), rows)  # attention
        packed[:, layout.dim + 4 :] = rng.integers(0, 50, (rows, 3))  # attended items, reserved too
        alone = ann.mixed_logits(explore.copy(), packed, layout, RESERVED)
        kept = ann.mixed_logits(explore.copy(), packed, layout, RESERVED, work[:rows])
        assert np.array_equal(alone[0], kept[0]) and np.array_equal(alone[1], kept[1])
