"""`streams intent-split` and `streams evaluate-intent`: the purchase-intent evaluation's two ends.

`make eval-intent` runs them around `streams train` and `streams predict --intent`
(`streams.model.intent_eval` has the protocol).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from streams.cli import app


@app.command("intent-split")
def intent_split(
    events: Annotated[Path, typer.Option("--events", exists=True, help="event log, one session per shopper")],
    out: Annotated[
        Path, typer.Option("--out", file_okay=False, help="folder for the train/test logs and labels")
    ],
    test_fraction: Annotated[
        float, typer.Option(min=0.01, max=0.99, help="the newest sessions (by first click) tested")
    ] = 0.2,
) -> None:
    """Split sessions by first click: train.jsonl.gz (older, whole), test.jsonl.gz (newest, each
    cut before its first order) and test_labels.tsv (user_id<TAB>1 if the session orders)."""
    from streams.model.intent_eval import write_split

    summary = write_split(events, out, test_fraction)
    typer.echo(json.dumps(summary))


@app.command("evaluate-intent")
def evaluate_intent(
    split: Annotated[
        Path, typer.Option("--split", exists=True, file_okay=False, help="intent-split's folder")
    ],
    predictions: Annotated[
        Path,
        typer.Option("--predictions", exists=True, help="streams predict --intent output on the test log"),
    ],
    json_out: Annotated[Path | None, typer.Option("--json", help="also write the results here")] = None,
) -> None:
    """ROC-AUC and PR-AUC of the model's intent against view count, session duration and a
    gradient-boosted classifier on session features (fitted on the training sessions)."""
    from streams.model.intent_eval import evaluate_intent as run
    from streams.model.intent_eval import format_results

    report = run(split, predictions)
    typer.echo(
        f"{report['test_sessions']:,} test sessions ({report['test_buying']:,} buy), "
        f"baseline fitted on {report['train_sessions']:,} ({report['train_buying']:,} buy)"
    )
    typer.echo(format_results(report))
    if json_out is not None:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
