"""`streams replay` and `streams record`: event logs to topics and back."""

from __future__ import annotations

import signal
import time
from collections import Counter
from pathlib import Path
from typing import Annotated

import typer
from tqdm import tqdm

from streams.cli import app
from streams.cli.options import Bootstrap, Prefix, settings_from


@app.command()
def replay(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="Event log (JSON lines, .gz ok)")],
    speed: Annotated[
        float | None, typer.Option(help="Event-time pacing: 1 = real time, 10 = 10x; default: max")
    ] = None,
    rate: Annotated[float | None, typer.Option(help="At most this many events per second")] = None,
    bootstrap: Bootstrap = None,
    topic_prefix: Prefix = None,
) -> None:
    """Play an event log into its topics, keys and per-key order preserved."""
    from streams.kafka.produce import replay_log
    from streams.kafka.topics import ensure_topics
    from streams.logs import read_log

    settings = settings_from(bootstrap, topic_prefix)
    ensure_topics(settings)  # never let the broker auto-create them with the wrong settings
    with tqdm(desc="replay", unit="ev", mininterval=0.5) as bar:
        summary = replay_log(read_log(file), settings, speed=speed, rate=rate, on_sent=lambda _: bar.update())
    per_topic = ", ".join(f"{topic} {n}" for topic, n in sorted(summary.sent.items()))
    achieved = summary.total / summary.seconds if summary.seconds else 0.0
    typer.echo(f"replayed {summary.total} events in {summary.seconds:.1f}s ({achieved:,.0f}/s): {per_topic}")


@app.command()
def record(
    topics: Annotated[
        list[str], typer.Argument(help="Topics (logical names like clicks map to prefixed topics)")
    ],
    out: Annotated[Path, typer.Option(help="Event log to write (.gz ok)")],
    from_beginning: Annotated[bool, typer.Option(help="Start at the oldest message, not the newest")] = False,
    until_idle: Annotated[float | None, typer.Option(help="Stop after this many idle seconds")] = None,
    bootstrap: Bootstrap = None,
    topic_prefix: Prefix = None,
) -> None:
    """Record topics into an event log that `streams replay` plays back unchanged. Ctrl-C stops."""
    from streams.kafka.record import RecordOptions, consume_topics, merge_by_time, to_log_record
    from streams.logs import write_log

    settings = settings_from(bootstrap, topic_prefix)
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    options = RecordOptions(tuple(topics), from_beginning, until_idle)
    messages = []
    started = time.monotonic()
    with tqdm(desc="record", unit="msg", mininterval=0.5) as bar:
        for batch in consume_topics(options, settings, should_stop=lambda: stopping):
            messages += batch
            bar.update(len(batch))
    records = [to_log_record(m, settings) for m in merge_by_time(messages)]
    write_log(out, records)
    counts = Counter(r.topic for r in records)
    per_topic = ", ".join(f"{t} {n}" for t, n in sorted(counts.items())) or "nothing"
    typer.echo(f"recorded {len(records)} messages in {time.monotonic() - started:.1f}s to {out}: {per_topic}")
