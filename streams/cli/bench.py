"""`streams bench`: throughput, latency, state size and recovery against a bare-Kafka ceiling."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from streams.cli import app
from streams.cli.options import Bootstrap


@app.command()
def bench(
    out: Annotated[Path, typer.Option(help="Folder for results.json and latency.png")] = Path("bench"),
    seconds: Annotated[float, typer.Option(help="How long each offered rate is held")] = 10.0,
    rates: Annotated[str, typer.Option(help="Offered rates, events/s, comma-separated")] = "250,1000,2500",
    max_rate_events: Annotated[int, typer.Option(help="Backlog size of the maximum-rate run")] = 20_000,
    state_users: Annotated[
        int, typer.Option(help="Users for the RocksDB size and recovery figures")
    ] = 1_000_000,
    offline_events: Annotated[int, typer.Option(help="Events of the offline replay figure")] = 30_000,
    bootstrap: Bootstrap = None,
) -> None:
    """Measure every benchmark figure in one run and print it beside its target."""
    from streams.bench.config import BenchConfig
    from streams.bench.run import run_bench, table
    from streams.cli.options import settings_from

    config = BenchConfig(
        offered_rates=tuple(int(r) for r in rates.split(",")),
        seconds=seconds,
        max_rate_events=max_rate_events,
        state_users=state_users,
        offline_events=offline_events,
    )
    results = run_bench(config, settings_from(bootstrap), out)
    typer.echo("\n" + table(results))
    typer.echo(f"\n{out / 'results.json'}, {out / 'latency.png'}")


@app.command()
def soak(
    minutes: Annotated[float, typer.Option(help="How long traffic is sent")] = 30.0,
    rate: Annotated[float, typer.Option(help="Offered events/s")] = 100.0,
    kill_every: Annotated[float, typer.Option(help="Seconds between SIGKILLs of the worker")] = 300.0,
    out: Annotated[Path, typer.Option(help="Folder for soak.json")] = Path("bench"),
    bootstrap: Bootstrap = None,
) -> None:
    """Generated traffic with periodic worker kills: events in and out, dead letters, lost events
    and the worker's memory over time; exit status 1 unless 0 events are lost and memory is flat."""
    from streams.bench.soak import SoakConfig, run_soak, summary
    from streams.cli.options import settings_from

    config = SoakConfig(minutes=minutes, rate=rate, kill_every=kill_every)
    result = run_soak(config, settings_from(bootstrap), out)
    typer.echo("\n" + summary(result))
    typer.echo(f"\n{out / 'soak.json'}")
    if result.lost or not result.memory()["flat"]:
        raise typer.Exit(1)
