"""A repeat-aware model served from the nearest-neighbour index (`streams.model.ann`).

A tiny repeat-aware model is trained here on sessions that walk forward through the catalogue and
return to earlier items, then served both ways: over every item, and from the index. Its own 300
items fit one list of the index, whose normaliser then reads every item; a catalogue of 20,000 items
generated around it (`streams.model.catalogue`) has 40 lists, of which a query reads 16, and an
estimated normaliser.

Needs the `train` extra (torch + onnx); without torch the module is skipped with that reason.
"""

from __future__ import annotations

import gzip
import logging
import random
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="torch is not installed (pip install -e '.[train]')")
onnx = pytest.importorskip("onnx", reason="onnx is not installed (pip install -e '.[train]')")

from streams.model import ann  # noqa: E402
from streams.model.catalogue import write_large_catalogue  # noqa: E402
from streams.model.features import RESERVED, History, views  # noqa: E402
from streams.model.runtime import OnnxRecommender, Prediction  # noqa: E402
from streams.model.train import TrainConfig, load_session_file, run_training  # noqa: E402

ITEMS = [str(i) for i in range(1, 301)]  # the trained catalogue, in the order its walks take
LARGE = 20_000  # 40 lists of the index, 16 read per query


def _session(rng: random.Random, ids: list[str]) -> list[str]:
    """A walk forward through `ids` that, at about every third click, returns to the item two or
    three clicks back."""
    at = rng.randrange(len(ids))
    session = [ids[at]]
    while len(session) < rng.randint(3, 12):
        if len(session) >= 3 and rng.random() < 0.35:
            session.append(session[-rng.choice((2, 3))])
        else:
            at = (at + 1) % len(ids)
            session.append(ids[at])
    return session


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rng = random.Random(7)
    folder = tmp_path_factory.mktemp("repeat-model")
    path = folder / "train_sessions.txt.gz"
    with gzip.open(path, "wt") as f:
        for _ in range(900):
            f.write(" ".join(_session(rng, ITEMS)) + "\n")
    config = TrainConfig(dim=64, epochs=3, batch_size=64, patience=3, threads=1, seed=1, lr=5e-3, repeat=True)
    run_training(load_session_file(path, config), config, folder / "model", progress=False)
    return folder / "model"


@pytest.fixture(scope="module")
def large_dir(model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_large_catalogue(model_dir, tmp_path_factory.mktemp("large") / "catalogue", LARGE, seed=2)


def _pair(directory: Path) -> tuple[OnnxRecommender, OnnxRecommender]:
    """(the artifact scored over every item, the artifact served from its index, which is cached
    beside the artifact in its temporary folder)."""
    exact = OnnxRecommender(directory, ann_min_items=10**9)
    served = OnnxRecommender(directory, ann_min_items=1)
    assert exact.catalogue is None and served.catalogue is not None
    return exact, served


@pytest.fixture(scope="module")
def small(model_dir: Path) -> tuple[OnnxRecommender, OnnxRecommender]:
    return _pair(model_dir)


@pytest.fixture(scope="module")
def large(large_dir: Path) -> tuple[OnnxRecommender, OnnxRecommender]:
    return _pair(large_dir)


def _histories(ids: list[str], count: int, seed: int) -> list[History]:
    """Shoppers of 1 to 60 events (past the 50-event window) that walk through `ids` and return."""
    rng = random.Random(seed)
    out: list[History] = []
    for n in range(count):
        history: list[str] = []
        while len(history) < 1 + n % 60:
            history += _session(rng, ids)
        out.append(views(history[: 1 + n % 60]))
    return out


def _ids(prediction: Prediction) -> list[str]:
    return [item for item, _ in prediction.items]


def _attended(history: History, recommender: OnnxRecommender) -> set[str]:
    attend = int(recommender.metadata["serving"]["attend"])
    return {item for item, _, _ in history[-attend:] if item is not None}


def _returns_first_agree(
    histories: list[History], found: list[Prediction], truth: list[Prediction], recommender: OnnxRecommender
) -> int:
    """Checks that where exact scoring ranks a return (an attended event's item) first, the index
    path ranks it first too; returns on how many rows."""
    rows = 0
    for history, a, e in zip(histories, found, truth, strict=True):
        if _ids(e)[0] in _attended(history, recommender):
            rows += 1
            assert _ids(a)[0] == _ids(e)[0]
    return rows


def _agreement(
    exact: OnnxRecommender, served: OnnxRecommender, histories: list[History], carried: bool
) -> tuple[list[Prediction], list[Prediction]]:
    """Both ways' top 20, each from its own carried states (step graphs) or from whole histories."""
    answers = []
    for recommender in (exact, served):
        states = (
            [p.state for p in recommender.recommend([h[:-1] for h in histories], k=20)] if carried else None
        )
        answers.append(recommender.recommend(histories, k=20, carried=states))
    return answers[0], answers[1]


def test_the_cut_rows_give_the_graphs_logits(small: tuple[OnnxRecommender, OnnxRecommender]) -> None:
    """The row a cut graph returns (query, gate, attention, items) makes every logit of the uncut
    graph: the cut takes the right tensors, padded where the input was."""
    exact, served = small
    catalogue = served.catalogue
    assert catalogue is not None and catalogue.repeat is not None
    histories = _histories(ITEMS, 40, seed=1)
    logits, intent = exact.score(histories)
    rows, cut_intent = served.score(histories)
    assert rows.shape == (40, catalogue.dim + 1 + 2 * 50)
    for row, full in zip(rows, logits, strict=True):
        assert np.abs(catalogue.exact_scores(row) - full[RESERVED:]).max() <= 1e-4
    assert np.abs(cut_intent - intent).max() <= 1e-6


@pytest.mark.parametrize("carried", [False, True])
def test_one_list_and_every_item_in_the_normaliser_answer_as_exact_scoring(
    small: tuple[OnnxRecommender, OnnxRecommender], carried: bool
) -> None:
    """300 items: the index holds one list, the normaliser reads every item, so only float sums in
    another order separate the two ways."""
    exact, served = small
    histories = _histories(ITEMS, 120, seed=2)
    truth, found = _agreement(exact, served, histories, carried)
    same = [_ids(a) == _ids(e) for a, e in zip(found, truth, strict=True)]
    assert np.mean(same) >= 0.95
    assert _returns_first_agree(histories, found, truth, exact) >= 10
    for a, e in zip(found, truth, strict=True):
        assert len(set(_ids(a)) & set(_ids(e))) >= 19
        probabilities = dict(e.items)
        assert all(p == pytest.approx(probabilities[i], rel=1e-4) for i, p in a.items if i in probabilities)


@pytest.mark.parametrize("carried", [False, True])
def test_a_large_catalogue_is_served_from_its_index_as_exact_scoring_ranks_it(
    large: tuple[OnnxRecommender, OnnxRecommender], carried: bool
) -> None:
    exact, served = large
    histories = _histories(exact.vocab.ids, 150, seed=3)
    truth, found = _agreement(exact, served, histories, carried)
    recall = np.mean([len(set(_ids(a)) & set(_ids(e))) / 20 for a, e in zip(found, truth, strict=True)])
    assert recall >= 0.9, recall
    assert _returns_first_agree(histories, found, truth, exact) >= 10
    errors: list[float] = []
    for history, a, e in zip(histories, found, truth, strict=True):
        errors += _normaliser_is_the_only_estimate(a, e, _attended(history, exact))
    # what the sampled tail of the explore normaliser costs on this catalogue
    assert float(np.median(errors)) <= 0.1


def _normaliser_is_the_only_estimate(found: Prediction, truth: Prediction, attended: set[str]) -> list[float]:
    """Checks that a row's served probabilities are the exact ones but for the estimate of the explore
    normaliser: every explored item's is off by one factor f (the normaliser's), and a return's by a
    factor between 1 and f (its return term scales with the normaliser, its explore term does not).
    Returns each item's relative error."""
    exact = dict(truth.items)
    ratios = {item: p / exact[item] for item, p in found.items if item in exact}
    explored = [ratio for item, ratio in ratios.items() if item not in attended]
    if explored:
        f = explored[0]
        assert all(ratio == pytest.approx(f, rel=1e-4) for ratio in explored)
        low, high = min(1.0, f), max(1.0, f)
        returned = [ratio for item, ratio in ratios.items() if item in attended]
        assert all(low * (1 - 1e-4) <= ratio <= high * (1 + 1e-4) for ratio in returned)
    return [abs(ratio - 1) for ratio in ratios.values()]


def test_answers_are_bit_identical_at_batch_1_and_64(large: tuple[OnnxRecommender, OnnxRecommender]) -> None:
    _, served = large
    histories = [h for h in _histories(served.vocab.ids, 120, seed=4) if len(h) >= 2][:64]
    assert len(histories) == 64
    exclude = [{history[-2][0]} - {None} for history in histories]
    carried = [p.state for p in served.recommend([h[:-1] for h in histories], k=20)]
    for states in (None, carried):
        batched = served.recommend(histories, k=20, exclude=exclude, carried=states)  # type: ignore[arg-type]
        alone = [
            p
            for i, history in enumerate(histories)
            for p in served.recommend(
                [history],
                k=20,
                exclude=[exclude[i]],  # type: ignore[list-item]
                carried=None if states is None else [states[i]],
            )
        ]
        assert alone == batched


def test_an_excluded_return_is_dropped_and_k_still_filled(
    large: tuple[OnnxRecommender, OnnxRecommender],
) -> None:
    exact, served = large
    histories = _histories(exact.vocab.ids, 60, seed=6)
    history, plain = next(
        (h, p)
        for h, p in zip(histories, served.recommend(histories, k=10), strict=True)
        if _ids(p)[0] in _attended(h, exact)
    )
    returned = _ids(plain)[0]
    [filtered] = served.recommend([history], k=10, exclude=[{returned}])
    assert len(filtered.items) == 10 and returned not in _ids(filtered)
    assert _ids(filtered)[:9] == _ids(plain)[1:]
    # probabilities are over the whole catalogue, before exclusion
    kept = dict(plain.items)
    assert all(p == pytest.approx(kept[i], rel=0.05) for i, p in filtered.items if i in kept)
    ids = served.vocab.ids
    [nearly_all] = served.recommend([history], k=10, exclude=[set(ids) - {returned, ids[7]}])
    assert sorted(_ids(nearly_all)) == sorted({returned, ids[7]})


def test_the_generated_catalogue_of_a_repeat_aware_model_is_coherent(
    large: tuple[OnnxRecommender, OnnxRecommender], large_dir: Path
) -> None:
    """Every item-sized constant was rebuilt (the table, its transpose, both attentions' item keys):
    a step on a carried state answers what reading the whole history answers."""
    exact, _ = large
    step = onnx.load(str(large_dir / "step.onnx"))
    sizes = {init.name: tuple(init.dims) for init in step.graph.initializer}
    assert sizes["table"][0] == sizes["key_item"][0] == sizes["rep_key_item"][0] == LARGE + RESERVED
    histories = [h for h in _histories(exact.vocab.ids, 80, seed=5) if len(h) >= 2]
    carried = [p.state for p in exact.recommend([h[:-1] for h in histories], k=20)]
    stepped = exact.recommend(histories, k=20, carried=carried)
    whole = exact.recommend(histories, k=20)
    for one, other in zip(stepped, whole, strict=True):
        # the trained artifact's own two graphs differ this much on histories this long
        assert abs(one.purchase_intent - other.purchase_intent) <= 1e-3
        assert _ids(one)[:5] == _ids(other)[:5]


def test_a_repeat_aware_artifact_without_named_tensors_is_scored_over_every_item(
    model_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """An export from before the tensors were named still loads past the index's size."""
    older = tmp_path / "older"
    older.mkdir()
    for name in ("model.onnx", "step.onnx"):
        graph = onnx.load(str(model_dir / name))
        for node in graph.graph.node:
            for names in (node.input, node.output):
                for i, tensor in enumerate(names):
                    names[i] = {ann.GATE_NAME: "gate", ann.ATTENTION_NAME: "attention"}.get(tensor, tensor)
        del graph.graph.value_info[:]
        onnx.save(graph, str(older / name))
    (older / "metadata.json").write_bytes((model_dir / "metadata.json").read_bytes())
    with caplog.at_level(logging.WARNING, logger="streams.model.runtime"):
        fallback = OnnxRecommender(older, ann_min_items=1)
    assert fallback.catalogue is None
    assert "without named repeat tensors" in caplog.text
    history = [views(["11", "140", "11"])]
    [old], [named] = fallback.recommend(history, k=5), OnnxRecommender(model_dir).recommend(history, k=5)
    # the named export's mixture is made in numpy, the older one's in its graph: the same to rounding
    assert _ids(old) == _ids(named)
    assert [p for _, p in old.items] == pytest.approx([p for _, p in named.items], rel=1e-5)


def test_the_mixture_made_in_numpy_gives_the_graphs_logits(model_dir: Path) -> None:
    import json

    import onnxruntime as ort

    from streams.model.features import Featurizer, FeaturizerConfig, ItemVocab

    served = OnnxRecommender(model_dir)  # exact path: the graph's product, the mixture in numpy
    metadata = json.loads((model_dir / "metadata.json").read_text())
    featurizer = Featurizer(
        ItemVocab(metadata["vocabulary"]["items"]), FeaturizerConfig.from_dict(metadata["featurizer"])
    )
    histories = _histories(ITEMS, 40, seed=4)
    feeds = featurizer.encode(histories, pad_to=served.window)
    [graph] = ort.InferenceSession(str(model_dir / "model.onnx")).run(["logits"], feeds)
    logits, _ = served.score(histories)
    assert logits.shape == graph.shape
    # softmax-equivalent: the graph's logits are the mixture's log shifted by one constant per row
    shift = (logits - graph)[:, RESERVED:]
    assert np.allclose(shift, shift[:, :1], atol=2e-5)
