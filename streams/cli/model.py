"""`streams train`, `streams predict`, `streams evaluate`: the sequence model's offline commands.

torch is imported only inside `train` (it is the optional `train` extra), so `streams --help`, the
worker and `predict`/`evaluate` run on onnxruntime alone.
"""

from __future__ import annotations

import gzip
import json
import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from streams.cli import app

if TYPE_CHECKING:
    from streams.model.runtime import OnnxRecommender

ModelDir = Annotated[Path, typer.Option("--model", exists=True, file_okay=False, help="artifact directory")]


@app.command()
def train(
    out: Annotated[Path, typer.Option("--out", help="artifact directory to write")],
    sessions: Annotated[
        Path | None, typer.Option("--sessions", exists=True, help="SR-GNN session file (.txt or .gz)")
    ] = None,
    events: Annotated[
        Path | None, typer.Option("--events", exists=True, help="event log (clicks + orders)")
    ] = None,
    epochs: Annotated[int, typer.Option(min=1, help="maximum epochs (early stopping may end sooner)")] = 8,
    dim: Annotated[int, typer.Option(min=8, help="embedding and hidden size")] = 100,
    batch_size: Annotated[int, typer.Option(min=1)] = 512,
    lr: Annotated[float, typer.Option(help="Adam learning rate")] = 2e-3,
    decay_after: Annotated[
        int, typer.Option(min=0, help="epochs at the full rate before it halves each epoch")
    ] = 4,
    window: Annotated[int, typer.Option(min=1, max=50, help="events the model sees")] = 50,
    patience: Annotated[int, typer.Option(min=1, help="epochs without validation gain before stopping")] = 2,
    max_minutes: Annotated[float, typer.Option(help="training budget in minutes; 0 = none")] = 40.0,
    valid_fraction: Annotated[float, typer.Option(min=0.01, max=0.5, help="last sessions held out")] = 0.1,
    dropout: Annotated[float, typer.Option(min=0.0, max=0.9)] = 0.25,
    scale: Annotated[float, typer.Option(help="softmax scale of the cosine scores (NISER)")] = 16.0,
    bf16: Annotated[
        bool | None,
        typer.Option(
            "--bf16/--no-bf16", help="bfloat16 catalogue matmuls while training; default: if the CPU has it"
        ),
    ] = None,
    refit: Annotated[
        bool, typer.Option("--refit/--no-refit", help="the last epoch also trains on the validation sessions")
    ] = True,
    repeat: Annotated[
        bool,
        typer.Option(
            "--repeat/--no-repeat",
            help="next-item head mixing returns to recent items with exploring the catalogue",
        ),
    ] = True,
    last_item: Annotated[
        bool,
        typer.Option("--last-item/--no-last-item", help="the readout also reads the newest item's embedding"),
    ] = False,
    intent_permuted_items: Annotated[
        bool,
        typer.Option(
            "--intent-permuted-items/--intent-real-items",
            help="the intent loss reads item ids relabelled per batch (learns behaviour, not which items)",
        ),
    ] = True,
    seed: Annotated[int, typer.Option()] = 0,
    threads: Annotated[int, typer.Option(min=1, help="torch intra-op threads")] = 2,
    quiet: Annotated[bool, typer.Option("--quiet", help="no progress bars")] = False,
) -> None:
    """Train the sequence model (validation = last 10% of sessions) and export it to ONNX."""
    if (sessions is None) == (events is None):
        raise typer.BadParameter("give exactly one of --sessions or --events")
    from streams.model.train import TrainConfig, load_event_log, load_session_file, run_training

    config = TrainConfig(
        dim=dim,
        batch_size=batch_size,
        lr=lr,
        decay_after=decay_after,
        window=window,
        epochs=epochs,
        patience=patience,
        max_minutes=max_minutes,
        valid_fraction=valid_fraction,
        dropout=dropout,
        scale=scale,
        bf16=bf16,
        refit=refit,
        repeat=repeat,
        last_item=last_item,
        intent_permuted_items=intent_permuted_items,
        seed=seed,
        threads=threads,
    )
    data = load_session_file(sessions, config) if sessions is not None else load_event_log(events, config)  # type: ignore[arg-type]
    typer.echo(json.dumps(data.summary))
    command = shlex.join(["streams", *sys.argv[1:]])
    metadata = run_training(data, config, out, command=command, progress=not quiet)
    typer.echo(f"wrote {out} version {metadata['version']}: {json.dumps(metadata['metrics'])}")


def _read_prefixes(path: Path) -> list[list[str]]:
    # One prefix per line; anything after a tab (e.g. the target of a prefix/target file) is ignored.
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as f:
        return [line.split("\t", 1)[0].split() for line in f if line.strip()]


@app.command()
def predict(
    model: ModelDir,
    out: Annotated[
        Path, typer.Option("--out", help="top-k item ids per line, or user_id<TAB>intent per line")
    ],
    prefixes: Annotated[
        Path | None, typer.Option("--prefixes", exists=True, help="one prefix per line")
    ] = None,
    intent: Annotated[
        bool, typer.Option("--intent", help="purchase intent per shopper of --events instead of rankings")
    ] = False,
    events: Annotated[
        Path | None, typer.Option("--events", exists=True, help="event log, with --intent")
    ] = None,
    k: Annotated[int, typer.Option("--k", min=1)] = 20,
    batch_size: Annotated[int, typer.Option(min=1)] = 256,
) -> None:
    """Top-k next items for each prefix (read as views), or with --intent the purchase intent after
    each shopper's last event of an event log; both through the serving runtime, the events fed one
    by one as a worker would receive them."""
    from streams.model.runtime import OnnxRecommender

    if intent:
        if events is None or prefixes is not None:
            raise typer.BadParameter("--intent reads --events (and no --prefixes)")
        _predict_intent(OnnxRecommender(model), events, out, batch_size)
        return
    if prefixes is None or events is not None:
        raise typer.BadParameter("give --prefixes (or --intent with --events)")
    from streams.model.features import views

    recommender = OnnxRecommender(model)
    rows = _read_prefixes(prefixes)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", encoding="utf-8") as f:
        for lo in range(0, len(rows), batch_size):
            chunk = [views(p) for p in rows[lo : lo + batch_size]]
            for prediction in recommender.recommend_streamed(chunk, k):
                f.write(" ".join(item for item, _ in prediction.items) + "\n")
    typer.echo(f"wrote {len(rows):,} rankings to {out} (model {recommender.version})")


def _predict_intent(recommender: OnnxRecommender, events: Path, out: Path, batch_size: int) -> None:
    from streams.model.intent import read_shopper_histories, streamed_intents

    shoppers = read_shopper_histories(events)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", encoding="utf-8") as f:
        for user, value in streamed_intents(recommender, shoppers.histories.items(), batch_size):
            f.write(f"{user}\t{value!r}\n")
    skipped = f", {shoppers.skipped:,} invalid records skipped" if shoppers.skipped else ""
    count = len(shoppers.histories)
    typer.echo(f"wrote the intent of {count:,} shoppers to {out} (model {recommender.version}{skipped})")


@app.command()
def evaluate(
    model: ModelDir,
    data: Annotated[
        Path, typer.Option("--data", exists=True, file_okay=False, help="train_sessions + test_prefix_target")
    ],
    baselines: Annotated[bool, typer.Option(help="also run POP, S-POP, Item-KNN, SKNN, V-SKNN")] = True,
    threads: Annotated[int, typer.Option(min=1, help="onnxruntime intra-op threads")] = 1,
    json_out: Annotated[Path | None, typer.Option("--json", help="also write the results here")] = None,
) -> None:
    """HR@10/20, MRR@10/20, NDCG@20 on every test case, full ranking, for the model and the baselines."""
    from streams.model.baselines import default_baselines
    from streams.model.evaluate import TEST_FILE, TRAIN_FILE, evaluate_rankers
    from streams.model.metrics import format_table
    from streams.model.runtime import OnnxRecommender, RecommenderRanker
    from streams.model.sessions import read_prefix_targets, read_sessions

    recommender = OnnxRecommender(model, threads=threads)
    train_sessions = read_sessions(data / TRAIN_FILE)
    cases = read_prefix_targets(data / TEST_FILE)
    rankers = [*(default_baselines() if baselines else []), RecommenderRanker(recommender)]
    results = evaluate_rankers(rankers, train_sessions, cases)
    typer.echo(f"{len(cases):,} cases, model {recommender.version}")
    typer.echo(format_table(results))
    if json_out is not None:
        report = {
            "model": str(model),
            "version": recommender.version,
            "cases": len(cases),
            "results": results,
        }
        json_out.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
