"""`streams worker` and `streams state`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from streams.cli import app
from streams.cli.options import AppId, Bootstrap, Prefix, settings_from


@app.command()
def worker(
    bootstrap: Bootstrap = None,
    topic_prefix: Prefix = None,
    app_id: AppId = None,
    data_dir: Annotated[str | None, typer.Option(help="RocksDB folder [env STREAMS_DATA_DIR]")] = None,
    web_port: Annotated[int | None, typer.Option(help="HTTP port [env STREAMS_WEB_PORT, 6066]")] = None,
    model: Annotated[
        Path | None, typer.Option(help="Model artifact dir [env STREAMS_MODEL; default models/onnx/default]")
    ] = None,
    no_model: Annotated[
        bool, typer.Option("--no-model", help="State and triggers only, no recommendations")
    ] = False,
    rules: Annotated[Path | None, typer.Option(help="Business rules (TOML/JSON) [env STREAMS_RULES]")] = None,
    batch_max: Annotated[int, typer.Option(help="Most events per micro-batch")] = 256,
    tick_seconds: Annotated[float, typer.Option(help="Wall-clock timer tick, s (0: event time only)")] = 5.0,
    loglevel: Annotated[str, typer.Option(help="Log level")] = "info",
) -> None:
    """Run a worker: state, recommendations, promotion triggers, audience segments, dead letters, HTTP API."""
    import os

    from faust.worker import Worker as FaustWorker

    from streams.core.config import RulesConfig
    from streams.core.recommend import TrendingOnly
    from streams.core.segments import SegmentRules
    from streams.kafka.topics import ensure_topics
    from streams.live.app import Worker
    from streams.live.malloc import configure_allocator
    from streams.serving import ModelRecommender, default_model_dir

    try:
        rules_config = RulesConfig.load(rules or os.environ.get("STREAMS_RULES"))
        SegmentRules(rules_config)  # a bad segment rule stops here, named, before Faust starts
    except ValueError as exc:
        typer.echo(f"rules: {exc}", err=True)
        raise typer.Exit(2) from None
    configure_allocator()  # before RocksDB, onnxruntime and Faust start their threads
    settings = settings_from(bootstrap, topic_prefix, app_id, data_dir=data_dir, web_port=web_port)
    ensure_topics(settings)
    model_dir = None if no_model else (model or default_model_dir())
    recommender = ModelRecommender(model_dir) if model_dir is not None else TrendingOnly()
    live = Worker(
        settings,
        rules_config,
        recommender,
        batch_max=batch_max,
        tick_seconds=tick_seconds or None,
    )
    FaustWorker(live.app, loglevel=loglevel, quiet=True).execute_from_commandline()


@app.command()
def state(
    user_id: str,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
    bootstrap: Bootstrap = None,
    app_id: AppId = None,
) -> None:
    """Print one user's state, read from the state table's changelog."""
    from streams.live.changelog import read_states

    states = read_states(settings_from(bootstrap, app_id=app_id), user_id)
    if user_id not in states:
        typer.echo(f"no state for user {user_id!r}", err=True)
        raise typer.Exit(1)
    view = states[user_id].to_dict()
    if as_json:
        typer.echo(json.dumps(view, indent=2))
        return
    events = sum(view["counters"].values())
    typer.echo(f"user {user_id}  events {events}  first {view['first_ts']}  last {view['last_ts']}")
    typer.echo(f"session  {view['session']}")
    typer.echo(f"counters {view['counters']}")
    typer.echo(f"cart     { {k: v['quantity'] for k, v in view['cart'].items()} }")
    typer.echo(f"bought   { {k: v['status'] for k, v in view['purchases'].items()} }")
    typer.echo("recent:")
    for e in view["recent"][-10:]:
        typer.echo(f"  {e['ts']}  {e['kind']:<16} {e['item_id'] or ''}")


@app.command("log-ref")
def log_ref(user_id: str) -> None:
    """The reference worker logs print instead of USER_ID (salted with STREAMS_LOG_SALT): grep for it."""
    from streams.redaction import user_ref

    typer.echo(user_ref(user_id, settings_from().log_salt))
