"""A tiny train -> export -> parity -> predict cycle, on a generated event log and on a session file.

Needs the `train` extra (torch + onnx); without torch the module is skipped with that reason.
"""

from __future__ import annotations

import gzip
import json
import random
from pathlib import Path

import numpy as np
import onnx
import pytest

torch = pytest.importorskip("torch", reason="torch is not installed (pip install -e '.[train]')")
pytest.importorskip("onnx", reason="onnx is not installed (pip install -e '.[train]')")

from typer.testing import CliRunner  # noqa: E402

from streams.cli import _register, app  # noqa: E402
from streams.generate import TrafficConfig, generate_traffic  # noqa: E402
from streams.logs import LogRecord, read_log, write_log  # noqa: E402
from streams.model.export import PARITY_TOLERANCE, check_parity, export_model, random_inputs  # noqa: E402
from streams.model.features import INPUT_NAMES, RESERVED, views  # noqa: E402
from streams.model.runtime import OnnxRecommender, RecommenderRanker  # noqa: E402
from streams.model.train import (  # noqa: E402
    TrainConfig,
    load_event_log,
    load_session_file,
    roc_auc,
    run_training,
    train,
)

# One thread: two threads that must meet every op stall badly when other processes hold the cores.
TINY = TrainConfig(dim=16, epochs=2, batch_size=64, patience=1, threads=1, seed=3)


@pytest.fixture(scope="module")
def event_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("log") / "traffic.jsonl"
    write_log(path, generate_traffic(TrafficConfig(users=60, items=150, events=4_000, seed=5)))
    return path


@pytest.fixture(scope="module")
def session_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rng = random.Random(0)
    path = tmp_path_factory.mktemp("sessions") / "train_sessions.txt.gz"
    with gzip.open(path, "wt") as f:
        for _ in range(400):
            start = rng.randrange(40)
            # Items walk forward, so the next item is learnable from the last one.
            f.write(" ".join(str(1 + (start + i) % 40) for i in range(rng.randint(2, 7))) + "\n")
    return path


def test_events_train_export_parity_predict(event_log: Path, tmp_path: Path) -> None:
    data = load_event_log(event_log, TINY)
    assert data.summary["orders"] > 0 and (data.label == 1).any()
    result = train(data, TINY, progress=False)
    out = tmp_path / "artifact"
    real = data.batch(np.flatnonzero(data.valid)[:128])
    config = data.featurizer.config
    metadata = export_model(result.model, data.vocab, config, out, real_inputs=real, command="streams train")
    assert metadata["parity"]["real"]["logits"] <= PARITY_TOLERANCE
    assert {"version", "vocabulary", "inputs", "outputs", "featurizer", "command"} <= set(metadata)

    # Parity again through the serving class, on real histories and on random inputs.
    recommender = OnnxRecommender(out)
    histories = [views(["sku-1", "sku-2"]), [("sku-3", "view", 0), (None, "search", 5_000)], []]
    logits, intent = recommender.score(histories)
    encoded = recommender._loaded.featurizer.encode(histories)
    with torch.no_grad():
        ref_logits, ref_intent = result.model(*(torch.from_numpy(encoded[n]) for n in INPUT_NAMES))
    assert np.abs(logits[:, RESERVED:] - ref_logits.numpy()[:, RESERVED:]).max() <= PARITY_TOLERANCE
    assert np.abs(intent - torch.sigmoid(ref_intent).numpy()).max() <= PARITY_TOLERANCE
    check_parity(result.model, (out / "model.onnx").read_bytes(), random_inputs(result.model, 32, seed=9))

    # predict through the CLI: one prefix per line in, top-k per line out.
    prefixes = tmp_path / "prefixes.txt"
    prefixes.write_text("sku-1 sku-2\nsku-3\n")
    _register()
    ranked = tmp_path / "ranked.txt"
    cli = CliRunner().invoke(
        app, ["predict", "--model", str(out), "--prefixes", str(prefixes), "--k", "5", "--out", str(ranked)]
    )
    assert cli.exit_code == 0, cli.output
    lines = ranked.read_text().splitlines()
    assert len(lines) == 2 and all(len(line.split()) == 5 for line in lines)


def test_session_file_train_and_evaluate(session_file: Path, tmp_path: Path) -> None:
    config = TrainConfig(dim=16, epochs=3, batch_size=64, patience=2, threads=2, seed=1, lr=5e-3)
    data = load_session_file(session_file, config)
    metadata = run_training(data, config, tmp_path / "model", command="streams train", progress=False)
    assert metadata["intent_trained"] is False
    assert metadata["metrics"]["validation"]["HR@20"] > 30.0  # a learnable walk beats chance (20/40)
    ranker = RecommenderRanker(OnnxRecommender(tmp_path / "model"))
    [top] = ranker.topk([["5", "6"]], k=3)
    assert len(top) == 3 and all(item.isdigit() for item in top)
    saved = json.loads((tmp_path / "model" / "metadata.json").read_text())
    assert saved["version"] == metadata["version"]
    assert saved["training"]["config"]["dim"] == 16


def test_roc_auc_counts_ties_half() -> None:
    assert roc_auc(np.array([0.1, 0.9, 0.5, 0.5]), np.array([0, 1, 0, 1])) == pytest.approx(0.875)
    assert np.isnan(roc_auc(np.array([1.0]), np.array([1])))


def test_fused_catalogue_cross_entropy_matches_autograd() -> None:
    import torch.nn.functional as F

    from streams.model.train import catalogue_cross_entropy

    gen = torch.Generator().manual_seed(0)
    target = torch.tensor([3, 0, 4, 10, 2, 0, 5])  # 0 = no next item: ignored
    for bf16, tol in ((False, 1e-6), (True, 2e-2)):
        grads = []
        for fused in (False, True):
            query = torch.randn(7, 5, generator=gen.manual_seed(1)).requires_grad_()
            table = torch.randn(11, 5, generator=gen.manual_seed(2)).requires_grad_()
            if fused:
                loss = catalogue_cross_entropy(query, table, target, bf16)
            else:
                loss = F.cross_entropy(query @ table.T, target, ignore_index=0)
            loss.backward()
            grads.append((loss.detach(), query.grad, table.grad))
        for ref, got in zip(*grads, strict=True):
            assert torch.allclose(ref, got, atol=tol, rtol=tol)


@pytest.mark.parametrize("bf16", [False, True])
def test_fused_catalogue_log_probability_matches_autograd(bf16: bool) -> None:
    from streams.model.train import catalogue_log_probability

    torch.manual_seed(1)
    query = torch.randn(6, 8, requires_grad=True)
    table = torch.randn(30, 8, requires_grad=True)
    target = torch.tensor([3, 0, 7, 7, 29, 1])
    weights = torch.randn(6)
    fused = catalogue_log_probability(query, table, target, bf16)
    (fused * weights).sum().backward()
    got = fused.detach(), query.grad.clone(), table.grad.clone()
    query.grad = table.grad = None
    q, w = (query.bfloat16(), table.bfloat16()) if bf16 else (query, table)
    reference = torch.log_softmax((q @ w.T).float(), 1).gather(1, target[:, None]).squeeze(1)
    (reference * weights).sum().backward()
    tolerance = 5e-2 if bf16 else 1e-5
    assert torch.allclose(got[0], reference.detach(), atol=tolerance)
    assert torch.allclose(got[1], query.grad, atol=tolerance)
    assert torch.allclose(got[2], table.grad, atol=tolerance)


def test_cli_train_defaults_are_the_train_config_defaults() -> None:
    import inspect

    from streams.cli.model import train as train_command

    defaults = TrainConfig()
    for name, parameter in inspect.signature(train_command).parameters.items():
        if hasattr(defaults, name):
            assert parameter.default == getattr(defaults, name), name


def test_refit_trains_the_last_epoch_on_the_validation_sessions_too(session_file: Path) -> None:
    config = TrainConfig(dim=16, epochs=3, batch_size=64, patience=5, threads=2, seed=1, lr=5e-3, refit=True)
    data = load_session_file(session_file, config)
    result = train(data, config, progress=False)
    assert ["refit" in row for row in result.history] == [False, False, True]
    assert result.metrics["refit_epoch"] == 3 and result.metrics["best_epoch"] == 3
    # The reported validation figures come from the last epoch that did not see the validation sessions.
    epoch_2 = result.history[1]
    assert result.metrics["validation"]["HR@20"] == epoch_2["HR@20"]
    # Having trained on them, the refitted model ranks the validation targets better than before.
    assert result.history[2]["MRR@20"] > epoch_2["MRR@20"]


def test_a_refit_run_reports_held_out_session_intent_from_before_its_refit(event_log: Path) -> None:
    from dataclasses import replace

    config = replace(TINY, epochs=3, patience=5, refit=True)
    data = load_event_log(event_log, config)
    result = train(data, config, progress=False)
    report = result.metrics["intent_validation_sessions"]
    assert report["after_epoch"] == 2 and result.metrics["refit_epoch"] == 3
    assert report["sessions"] == len(data.intent_sessions) and 0.0 <= report["model"] <= 1.0


@pytest.mark.parametrize(
    ("current", "epoch", "planned", "expected"),
    [
        (4, 1, 9, 4),  # the budget fits the plan: the configured start
        (4, 1, 5, 2),  # a busy start: only 5 fit, so the decay moves earlier
        (2, 2, 9, 4),  # the machine came free before the decay began: back to the configured start
        (2, 3, 9, 2),  # the decay has begun: it never moves later (the rate would go back up)
        (4, 5, 6, 3),  # ... but still moves earlier
        (4, 1, 2, 1),  # at least one epoch at the base rate
    ],
)
def test_the_lr_decay_start_follows_the_epochs_the_budget_fits(
    current: int, epoch: int, planned: int, expected: int
) -> None:
    from streams.model.train import schedule_decay_after

    assert schedule_decay_after(current, 4, epoch, planned) == expected


def test_impressions_in_a_log_change_nothing_the_model_trains_on(event_log: Path, tmp_path: Path) -> None:
    """Serving never reads an impression (it is not in the shopper's recent events): nor does training."""
    mixed: list[LogRecord] = []
    for n, record in enumerate(read_log(event_log)):
        mixed.append(record)
        if record.topic == "clicks" and n % 3 == 0:
            value = {"event_id": f"imp-{n}", "user_id": record.key, "type": "impression", "rec_id": "r-1"}
            mixed.append(LogRecord("clicks", record.key, record.ts, {**value, "ts": record.ts}))
    with_impressions = tmp_path / "with-impressions.jsonl"
    write_log(with_impressions, mixed)
    plain, shown = load_event_log(event_log, TINY), load_event_log(with_impressions, TINY)
    assert len(mixed) > len(list(read_log(event_log)))
    for name in ("items", "kinds", "gaps", "offsets", "point_end", "target", "label"):
        assert np.array_equal(getattr(plain, name), getattr(shown, name)), name


@pytest.fixture(scope="module")
def returning_sessions(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Sessions of random items where, from the third click on, each click returns to the item two
    clicks back: only a model that points into the history predicts them."""
    rng = random.Random(4)
    path = tmp_path_factory.mktemp("returning") / "train_sessions.txt.gz"
    with gzip.open(path, "wt") as f:
        for _ in range(600):
            session = [str(rng.randrange(1, 300)), str(rng.randrange(1, 300))]
            while len(session) < rng.randint(3, 8):
                session.append(session[-2])
            f.write(" ".join(session) + "\n")
    return path


def test_repeat_scores_are_the_log_of_the_mixture() -> None:
    from streams.model.net import NetConfig, SessionNet, item_scores

    torch.manual_seed(0)
    net = SessionNet(NetConfig(n_items=30, n_kinds=4, n_gaps=6, window=8, dim=8, repeat=True)).eval()
    items = torch.tensor([[5, 7, 5, 9, 0, 0], [3, 0, 0, 0, 0, 0]])
    kinds = (items > 0).long()
    gaps = (items > 0).long() * 2
    with torch.no_grad():
        table = net.item_table()
        readout = net.encode(items, kinds, gaps, table)
        explore = net.query(readout.session) @ table.T
        scores = item_scores(explore, readout, items)
        p = torch.sigmoid(readout.gate)[:, None]
        mixture = (1 - p) * torch.softmax(explore, 1)
        mixture = mixture.scatter_add(1, items, p * readout.attention)
    assert torch.allclose(torch.softmax(scores, 1), mixture, atol=1e-6)
    # Items outside the attended events keep their explore logit exactly.
    assert torch.equal(scores[0, 10:], explore[0, 10:]) and torch.equal(scores[1, 4:], explore[1, 4:])
    assert bool((scores[0, [5, 7, 9]] > explore[0, [5, 7, 9]]).all())


@pytest.mark.parametrize("last_item", [False, True])
def test_repeat_net_trains_exports_and_serves_returns(
    returning_sessions: Path, tmp_path: Path, last_item: bool
) -> None:
    config = TrainConfig(
        dim=16,
        epochs=3,
        batch_size=64,
        patience=3,
        threads=1,
        seed=1,
        lr=5e-3,
        repeat=True,
        last_item=last_item,
    )
    data = load_session_file(returning_sessions, config)
    metadata = run_training(data, config, tmp_path / "model", command="streams train", progress=False)
    assert metadata["model"]["net"]["repeat"] is True and metadata["model"]["net"]["last_item"] is last_item
    assert metadata["parity"]["step"]["logits"] <= PARITY_TOLERANCE  # export checked step == window
    # The catalogue's log-sum-exp is exported as max, exp and sum: ONNX Runtime's ReduceLogSumExp
    # is an unvectorised loop, half a large catalogue's step time.
    for graph in ("model.onnx", "step.onnx"):
        ops = {node.op_type for node in onnx.load(str(tmp_path / "model" / graph)).graph.node}
        assert "ReduceLogSumExp" not in ops and "Exp" in ops
    # Returns to the item two clicks back are ranked first by the served model.
    recommender = OnnxRecommender(tmp_path / "model")
    [served] = recommender.recommend_streamed([views(["11", "42", "11"])], k=3)
    assert served.items[0][0] == "42"
    # Past the index's catalogue size a repeat-aware model is served from the index, returns included
    # (tests/model/test_ann_repeat.py compares the two ways in depth).
    large = OnnxRecommender(tmp_path / "model", ann_min_items=1)
    assert large.catalogue is not None and large.catalogue.repeat is not None
    [indexed] = large.recommend_streamed([views(["11", "42", "11"])], k=3)
    assert [item for item, _ in indexed.items] == [item for item, _ in served.items]
    assert metadata["metrics"]["validation"]["MRR@20"] > 60.0
