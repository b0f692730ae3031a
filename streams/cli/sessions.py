"""`streams sessions`: an event log -> the session files that `streams train` and `streams evaluate` read."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from streams.cli import app


@app.command()
def sessions(
    log: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="event log (clicks are read)")],
    out: Annotated[Path, typer.Option("--out", file_okay=False, help="folder for the three session files")],
    test_fraction: Annotated[
        float,
        typer.Option(min=0.01, max=0.9, help="newest share of sessions (by first click) held out as test"),
    ] = 0.2,
    json_out: Annotated[Path | None, typer.Option("--json", help="also write the counts here")] = None,
) -> None:
    """Write train_sessions.txt.gz, test_sessions.txt.gz and test_prefix_target.tsv.gz (the SR-GNN
    layout) from a log's views and add-to-carts: a time split, repeats kept."""
    from streams.model.log_sessions import build_session_files

    try:
        split = build_session_files(log, out, test_fraction)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="LOG") from None
    summary = split.summary()
    counts = split.counts
    typer.echo(
        f"{counts['sessions']:,} sessions ({counts['single_item_sessions_dropped']:,} of one item dropped): "
        f"{counts['train_sessions']:,} train over {counts['train_items']:,} items, "
        f"{counts['test_sessions']:,} test ({counts['test_sessions_dropped']:,} dropped, "
        f"{counts['test_items_unseen_dropped']:,} clicks on items unseen in training removed), "
        f"{counts['test_cases']:,} test cases"
    )
    typer.echo(
        f"repeats: {100 * summary['repeat_in_prefix']:.1f}% of test targets are in their prefix, "
        f"{100 * summary['repeat_last_item']:.1f}% are its last item"
    )
    if split.skipped:
        reasons = ", ".join(f"{reason}: {n:,}" for reason, n in sorted(split.skipped.items()))
        typer.echo(f"clicks skipped (the worker would dead-letter them): {reasons}")
    typer.echo(f"wrote {out}")
    if json_out is not None:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps({"log": str(log), **summary}, indent=1) + "\n", encoding="utf-8")
