"""`streams generate` and `streams import`: produce event logs from synthetic traffic or public datasets."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from tqdm import tqdm

from streams.cli import app
from streams.generate import TrafficConfig, generate_traffic
from streams.importers import import_diginetica, import_otto
from streams.logs import LogRecord, write_log
from streams.yoochoose import import_yoochoose


class Source(StrEnum):
    diginetica = "diginetica"
    otto = "otto"
    yoochoose = "yoochoose"


_IMPORTERS: dict[Source, Callable[[Path], Iterator[LogRecord]]] = {
    Source.diginetica: import_diginetica,
    Source.otto: import_otto,
    Source.yoochoose: import_yoochoose,
}

OutOption = Annotated[Path, typer.Option("--out", help="event log to write; a .gz name compresses it")]


@app.command()
def generate(
    out: OutOption,
    users: Annotated[int, typer.Option(min=1, help="number of shoppers")] = 1_000,
    items: Annotated[int, typer.Option(min=1, help="catalog size")] = 5_000,
    events: Annotated[int, typer.Option(min=0, help="click + order events (catalog not counted)")] = 50_000,
    seed: Annotated[int, typer.Option(help="same seed, same log")] = 0,
    daily_pattern: Annotated[
        bool, typer.Option("--daily-pattern", help="sessions start by a shop's hour-of-day curve (UTC)")
    ] = False,
    days: Annotated[
        float | None, typer.Option(min=0, help="end the log after this much event time (--events caps it)")
    ] = None,
    checkout_rate: Annotated[
        float,
        typer.Option(
            min=0,
            max=1,
            help="orders go through a checkout_started click, and this share of abandoned carts too",
        ),
    ] = 0.0,
) -> None:
    """Write a deterministic synthetic traffic log: the catalog, then interleaved user sessions."""
    config = TrafficConfig(
        users=users,
        items=items,
        events=events,
        seed=seed,
        daily_pattern=daily_pattern,
        days=days,
        checkout_rate=checkout_rate,
    )
    total = items + events if days is None else None  # with --days, events is only a cap
    records = tqdm(generate_traffic(config), total=total, unit="rec", desc="generate")
    _write(out, records)


@app.command("import")
def import_(
    source: Annotated[Source, typer.Argument(help="dataset format")],
    path: Annotated[Path, typer.Argument(exists=True, help="the dataset's folder or file")],
    out: OutOption,
) -> None:
    """Convert a public session dataset into an event log in event-time order."""
    records = tqdm(_IMPORTERS[source](path), unit="rec", desc=f"import {source.value}")
    _write(out, records)


def _write(out: Path, records: Iterable[LogRecord]) -> None:
    per_topic: Counter[str] = Counter()

    def counted() -> Iterator[LogRecord]:
        for record in records:
            per_topic[record.topic] += 1
            yield record

    total = write_log(out, counted())
    summary = ", ".join(f"{topic}={count:,}" for topic, count in sorted(per_topic.items()))
    typer.echo(f"wrote {total:,} records to {out} ({summary or 'empty'})")
