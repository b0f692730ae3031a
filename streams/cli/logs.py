"""`streams replay` and `streams record`: event logs to topics and back."""

from __future__ import annotations

import signal
import time
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from tqdm import tqdm

from streams.cli import app
from streams.cli.options import Bootstrap, Prefix, settings_from

if TYPE_CHECKING:
    from streams.logs import LogRecord
    from streams.offline.replay import Variant
    from streams.output_encoding import OutputFormat


ModelOption = Annotated[
    str | None,
    typer.Option(
        help="Model artifact directory, or 'none' for trending only [default: env STREAMS_MODEL, "
        "else the shipped model]"
    ),
]
RulesOption = Annotated[
    Path | None, typer.Option(exists=True, dir_okay=False, help="Rules config (TOML or JSON)")
]


@app.command()
def replay(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="Event log (JSON lines, .gz ok)")],
    offline: Annotated[
        bool, typer.Option("--offline", help="Run the pipeline in this process (no broker) into --out")
    ] = False,
    out: Annotated[Path | None, typer.Option(help="Output folder of an --offline replay")] = None,
    model: ModelOption = None,
    rules: RulesOption = None,
    partitions: Annotated[
        int | None, typer.Option(help="Partitions to simulate offline (as the live topics have)")
    ] = None,
    zero_wallclock: Annotated[
        bool, typer.Option(help="Write 0 for run time and speed, so two runs compare byte for byte")
    ] = False,
    output_format: Annotated[
        str | None,
        typer.Option(
            help="Also write messages.jsonl: every output message (value bytes and headers) as a "
            "worker with this STREAMS_OUTPUT_FORMAT (msgpack or json) sends it"
        ),
    ] = None,
    speed: Annotated[
        float | None, typer.Option(help="Event-time pacing: 1 = real time, 10 = 10x; default: max")
    ] = None,
    rate: Annotated[float | None, typer.Option(help="At most this many events per second")] = None,
    bootstrap: Bootstrap = None,
    topic_prefix: Prefix = None,
) -> None:
    """Play an event log into its topics (keys and order preserved), or --offline through the pipeline."""
    from streams.logs import read_log

    settings = settings_from(bootstrap, topic_prefix)
    messages_format = _output_format(output_format)
    if offline:
        if out is None:
            raise typer.BadParameter("an --offline replay needs --out DIR", param_hint="--out")
        _replay_offline(
            list(read_log(file)),
            variant(model, rules),
            partitions or settings.partitions,
            out,
            zero_wallclock,
            settings.max_message_bytes,
            messages_format,
        )
        return
    if out is not None or model is not None or rules is not None or output_format is not None:
        raise typer.BadParameter(
            "--out, --model, --rules and --output-format apply to --offline replays only"
        )

    from streams.kafka.produce import replay_log
    from streams.kafka.topics import ensure_topics

    ensure_topics(settings)  # never let the broker auto-create them with the wrong settings
    with tqdm(desc="replay", unit="ev", mininterval=0.5) as bar:
        summary = replay_log(read_log(file), settings, speed=speed, rate=rate, on_sent=lambda _: bar.update())
    per_topic = ", ".join(f"{topic} {n}" for topic, n in sorted(summary.sent.items()))
    achieved = summary.total / summary.seconds if summary.seconds else 0.0
    typer.echo(f"replayed {summary.total} events in {summary.seconds:.1f}s ({achieved:,.0f}/s): {per_topic}")


def variant(model: str | None, rules: Path | None) -> Variant:
    from streams.offline.replay import Variant
    from streams.serving import default_model_dir

    if model is None:
        return Variant(default_model_dir(), rules)
    return Variant(None if model.lower() == "none" else Path(model), rules)


def _output_format(name: str | None) -> OutputFormat | None:
    from streams.output_encoding import output_format

    try:
        return None if name is None else output_format(name)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--output-format") from None


def _replay_offline(
    records: list[LogRecord],
    chosen: Variant,
    partitions: int,
    out: Path,
    zero_wallclock: bool,
    max_message_bytes: int,
    output_format: OutputFormat | None = None,
) -> None:
    from streams.offline.replay import run_offline, write_run

    run = run_offline(records, chosen, partitions, max_message_bytes)
    paths = write_run(run, out, zero_wallclock, output_format)
    summary = run.summary()
    typer.echo(
        f"{summary['events']:,} events ({summary['dead_letters']:,} dead letters) -> "
        f"{summary['recommendations']:,} recommendations, {sum(summary['triggers'].values()):,} triggers, "
        f"{sum(summary['segment_events'].values()):,} segment events "
        f"{summary['demand']:,} demand window counts "
        f"in {run.seconds:.1f}s ({summary['events_per_s']:,.0f} events/s), {chosen.describe()}"
    )
    for name, path in paths.items():
        typer.echo(f"  {name}: {path}")


@app.command()
def diff(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="Event log (JSON lines, .gz ok)")],
    baseline: Annotated[
        list[str], typer.Option(help="A model directory, 'none', and/or a rules file (repeat for both)")
    ],
    candidate: Annotated[list[str], typer.Option(help="Same as --baseline, for the other side")],
    n: Annotated[int, typer.Option("-n", help="Compare and score the top N")] = 10,
    partitions: Annotated[int | None, typer.Option(help="Partitions to simulate")] = None,
    out: Annotated[Path | None, typer.Option(help="Write the report as JSON here")] = None,
) -> None:
    """Replay a log offline with two variants (model and/or rules) and compare what they produce."""
    import json

    from streams.logs import read_log
    from streams.offline.diff import diff_runs
    from streams.offline.replay import run_offline

    records = list(read_log(file))
    settings = settings_from()
    count = partitions or settings.partitions
    runs = [
        run_offline(records, _variant_of(spec), count, settings.max_message_bytes)
        for spec in (baseline, candidate)
    ]
    report = diff_runs(records, runs[0], runs[1], n)
    typer.echo(report.table())
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report.as_dict(), indent=1, sort_keys=True) + "\n", encoding="utf-8")
        typer.echo(f"report: {out}")


def _variant_of(spec: list[str]) -> Variant:
    """`--baseline models/x --baseline rules.toml`: directories (or 'none') are models, files are rules."""
    model: str | None = None
    rules: Path | None = None
    for item in spec:
        path = Path(item)
        if item.lower() == "none" or path.is_dir():
            model = item
        elif path.is_file():
            rules = path
        else:
            raise typer.BadParameter(f"{item}: neither a model directory, 'none', nor a rules file")
    return variant(model, rules)


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
