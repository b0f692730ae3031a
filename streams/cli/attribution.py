"""`streams attribution LOG`: what recommendations were shown, clicked and bought from, offline."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from streams.cli import app
from streams.cli.logs import ModelOption, RulesOption, variant
from streams.cli.options import settings_from


@app.command()
def attribution(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="Event log (JSON lines, .gz ok)")],
    model: ModelOption = None,
    rules: RulesOption = None,
    partitions: Annotated[
        int | None, typer.Option(help="Partitions to simulate (as the live topics have)")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the figures as JSON")] = False,
) -> None:
    """Impressions, clicks, add-to-carts, orders and revenue per model version and placement, from a
    recorded log run through the pipeline in this process: the figures a worker's
    GET /stats/recommendations gives for the same log."""
    from streams.core.attribution import shop_summary
    from streams.logs import read_log
    from streams.offline.replay import run_offline

    settings = settings_from()
    count = partitions or settings.partitions
    run = run_offline(read_log(file), variant(model, rules), count, settings.max_message_bytes)
    by_partition = {p: state.attribution.to_wire() for p, state in run.result.partitions.items()}
    # Partitions without events hold nothing to count: the log covers them all.
    by_partition |= {p: {} for p in range(count) if p not in by_partition}
    document = shop_summary(by_partition, count, run.rules.attribution_window_ms)
    typer.echo(json.dumps(document, indent=1, sort_keys=True) if as_json else table(document))


def table(document: dict[str, Any]) -> str:
    header = (
        "model_version",
        "placement",
        "impressions",
        "clicks",
        "add_to_carts",
        "orders",
        "revenue",
        "ctr",
    )
    rows = [
        (
            row["model_version"],
            row["placement"],
            *(str(row[k]) for k in header[2:6]),
            f"{row['revenue']:.2f}",
            "-" if row["click_through_rate"] is None else f"{row['click_through_rate']:.2%}",
        )
        for row in [*document["rows"], {**document["totals"], "model_version": "all", "placement": "all"}]
    ]
    widths = [max(len(line[i]) for line in [header, *rows]) for i in range(len(header))]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)) for line in [header, *rows]
    ]
    window = document["attribution_window_ms"] / 3_600_000
    return "\n".join([*lines, f"attribution window {window:g} h, last touch, event time"])
