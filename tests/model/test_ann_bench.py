"""The generated large catalogue and the large-catalogue figures of `make bench`, at a small size."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from streams.bench.contestants import CONTESTANTS
from streams.bench.run import checks, table
from streams.model import ann
from streams.model.ann_bench import large_catalogue_figures
from streams.model.bench import generated_histories
from streams.model.catalogue import generated_items, write_large_catalogue
from streams.model.embeddings import load_item_embeddings
from streams.model.runtime import OnnxRecommender
from tests.model.test_runtime import DEFAULT_MODEL

ITEMS = 3_000


@pytest.fixture(scope="module")
def catalogue(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_large_catalogue(DEFAULT_MODEL, tmp_path_factory.mktemp("catalogue") / "c", ITEMS, seed=3)


def test_generated_items_are_unit_noisy_copies_of_the_trained_ones() -> None:
    base = load_item_embeddings(DEFAULT_MODEL).vectors
    items = generated_items(base, 5_000, seed=0)
    assert items.shape == (5_000, base.shape[1]) and items.dtype == np.float32
    assert np.allclose(np.linalg.norm(items, axis=1), 1.0, atol=1e-5)
    nearest = (items @ base.T).max(axis=1)  # each is near the trained item it copies
    assert 0.6 <= float(np.median(nearest)) <= 0.85
    assert (generated_items(base, 5_000, seed=0) == items).all()


def test_the_generated_artifact_is_a_coherent_model(catalogue: Path) -> None:
    exact = OnnxRecommender(catalogue, ann_min_items=10 * ITEMS)
    assert exact.catalogue is None and len(exact.vocab.ids) == ITEMS and exact.steps
    assert len(load_item_embeddings(catalogue)) == ITEMS
    histories = [h[: 2 + i % 30] for i, h in enumerate(generated_histories(exact, 60, seed=2, length=40))]
    carried = [p.state for p in exact.recommend([h[:-1] for h in histories], k=20)]
    stepped = exact.recommend(histories, k=20, carried=carried)
    whole = exact.recommend(histories, k=20)
    # the attention keys of the new items were mapped like the table: a step on a carried state
    # still answers what reading the whole history answers
    for one, other in zip(stepped, whole, strict=True):
        assert abs(one.purchase_intent - other.purchase_intent) <= 1e-4
        assert [i for i, _ in one.items[:5]] == [i for i, _ in other.items[:5]]


def test_the_catalogue_is_written_once_per_recipe(catalogue: Path) -> None:
    written = (catalogue / "model.onnx").stat().st_mtime_ns
    assert write_large_catalogue(DEFAULT_MODEL, catalogue, ITEMS, seed=3) == catalogue
    assert (catalogue / "model.onnx").stat().st_mtime_ns == written


def test_large_catalogue_figures_and_their_checks(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    items = 20_000  # 40 lists, 16 read per query: the index answers, not a scan of everything
    monkeypatch.setenv(ann.MIN_ITEMS_ENV, str(items))
    figures = large_catalogue_figures(DEFAULT_MODEL, tmp_path, items=items, seconds=0.05)
    assert figures["items"] == items and figures["batch"] == 64
    assert figures["events_per_s"] > 0 and figures["recall_at_20"] >= 0.95
    assert list(tmp_path.glob(f"catalogue-{items}/ann-*.faiss"))  # the index was cached beside it

    results = {
        "large_catalogue": figures,
        "offline": {"events_per_s": 1.0},
        "state": {"mean_bytes": 1.0},
        "recovery": {"empty_disk_seconds": 1.0, "after_sigkill_seconds": 1.0},
        "rocksdb": {"users": 1, "disk_bytes": 0, "disk_bytes_per_user": 0},
        "max_rate": {contestant.name: {"throughput": 1.0} for contestant in CONTESTANTS},
        **{"worker": [], "passthrough": []},
    }
    rows = {row["figure"]: row for row in checks(results)}
    assert rows["1M-item catalogue recall@20"]["met"] is True
    assert rows["1M-item catalogue events/s, b64"]["measured"] == round(figures["events_per_s"], 3)
    results["checks"] = list(rows.values())
    assert "1M-item catalogue recall@20" in table(results)
