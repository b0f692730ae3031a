"""An operator's commands: `streams tail`, `streams send`, `streams lag`, `streams rules check`,
`streams model swap`."""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Annotated

import typer

from streams.cli import app
from streams.cli.options import AppId, Bootstrap, Prefix, settings_from

rules_app = typer.Typer(help="Business rules files.", no_args_is_help=True)
app.add_typer(rules_app, name="rules")
model_app = typer.Typer(help="The model a running worker serves.", no_args_is_help=True)
app.add_typer(model_app, name="model")

SWAP_TIMEOUT_SECONDS = 120.0  # loading a large artifact takes a while on a busy worker


@app.command()
def tail(
    topic: Annotated[str, typer.Argument(help="A topic: clicks, recommendations, dead-letters, ...")],
    from_beginning: Annotated[
        bool, typer.Option("--from-beginning", help="Start at the oldest message, not at the end")
    ] = False,
    idle_timeout: Annotated[
        float | None,
        typer.Option(
            "--idle-timeout", help="Stop after this many seconds without a message (default: follow)"
        ),
    ] = None,
    limit: Annotated[int | None, typer.Option(help="Stop after this many messages")] = None,
    bootstrap: Bootstrap = None,
    topic_prefix: Prefix = None,
) -> None:
    """Print a topic's messages decoded, one JSON object a line, as they arrive (Ctrl-C stops)."""
    from streams.kafka.inspect import tail as follow

    settings = settings_from(bootstrap, topic_prefix)
    shown = 0
    try:
        for message in follow(settings, topic, from_beginning, idle_timeout):
            typer.echo(json.dumps(message, ensure_ascii=False))
            shown += 1
            if limit is not None and shown >= limit:
                break
    except ValueError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        pass


@app.command()
def send(
    topic: Annotated[str, typer.Argument(help="clicks, orders or catalog")],
    event: Annotated[
        str, typer.Argument(help='The event as JSON, e.g. \'{"user_id": "u1", "type": "view", ...}\'')
    ],
    key: Annotated[
        str | None, typer.Option(help="Message key (default: user_id, or item_id for catalog)")
    ] = None,
    no_validate: Annotated[
        bool, typer.Option("--no-validate", help="Send as given, unchecked (to exercise dead letters)")
    ] = False,
    bootstrap: Bootstrap = None,
    topic_prefix: Prefix = None,
) -> None:
    """Send one event. `event_id` and `ts` (now) are filled in when missing; the event is checked
    against its schema first, as the worker will check it."""
    from streams.errors import BadMessage
    from streams.kafka.produce import replay_log
    from streams.kafka.send import event_record

    settings = settings_from(bootstrap, topic_prefix)
    try:
        record = event_record(topic, event, int(time.time() * 1000), key, validate=not no_validate)
    except (ValueError, BadMessage) as exc:
        typer.echo(f"not sent: {exc}", err=True)
        raise typer.Exit(2) from None
    replay_log([record], settings, mark_replay=False)
    typer.echo(json.dumps({"topic": settings.topic(topic), "key": record.key, "value": record.value}))


@app.command()
def lag(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
    bootstrap: Bootstrap = None,
    topic_prefix: Prefix = None,
    app_id: AppId = None,
) -> None:
    """How far the worker group is behind its input: per partition, committed offset, log end, lag."""
    from streams.kafka.inspect import group_lag

    settings = settings_from(bootstrap, topic_prefix, app_id)
    try:
        partitions = group_lag(settings)
    except ValueError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from None
    total = sum(p.lag for p in partitions)
    if as_json:
        rows = [
            {
                "topic": p.topic,
                "partition": p.partition,
                "committed": p.committed,
                "start": p.start,
                "end": p.end,
                "lag": p.lag,
            }
            for p in partitions
        ]
        typer.echo(json.dumps({"group": settings.app_id, "lag": total, "partitions": rows}))
        return
    typer.echo(f"{'topic':<12} {'partition':>9} {'committed':>12} {'end':>12} {'lag':>10}")
    for p in partitions:
        committed = "-" if p.committed is None else str(p.committed)
        typer.echo(f"{p.topic:<12} {p.partition:>9} {committed:>12} {p.end:>12} {p.lag:>10}")
    typer.echo(f"group {settings.app_id}: {total} input records not processed yet")


@rules_app.command("check")
def rules_check(file: Annotated[Path, typer.Argument(help="A rules file (TOML or JSON)")]) -> None:
    """Load a rules file as a worker would and say what it sets, or what is wrong with it."""
    from streams.core.config import RulesConfig
    from streams.core.segments import SegmentRules

    try:
        rules = RulesConfig.load(file)
        SegmentRules(rules)  # segment conditions are compiled here: a bad one is named
    except FileNotFoundError:
        typer.echo(f"{file}: no such file", err=True)
        raise typer.Exit(2) from None
    except (ValueError, TypeError, KeyError) as exc:
        typer.echo(f"{file}: {exc}", err=True)
        raise typer.Exit(2) from None
    defaults = RulesConfig().as_dict()
    changed = {k: v for k, v in rules.as_dict().items() if v != defaults.get(k)}
    typer.echo(f"{file}: ok")
    typer.echo(f"  triggers: {', '.join(rules.enabled_triggers) or 'none'}")
    typer.echo(f"  segments: {', '.join(s.id for s in rules.segments) or 'none'}")
    for name, value in sorted(changed.items()):
        if name not in ("segments", "enabled_triggers"):
            typer.echo(f"  {name} = {json.dumps(value)}")


@model_app.command("swap")
def model_swap(
    directory: Annotated[Path, typer.Argument(help="The model artifact directory, as the worker sees it")],
    worker: Annotated[
        list[str] | None,
        typer.Option(help="Worker URL; repeat for each worker [default: this host's worker]"),
    ] = None,
    token: Annotated[str | None, typer.Option(help="API token [env STREAMS_API_TOKEN]")] = None,
) -> None:
    """Make running workers serve another model, without a restart (POST /admin/model)."""
    settings = settings_from()
    token = token or os.environ.get("STREAMS_API_TOKEN") or settings.api_token
    if not token:
        typer.echo("a token is required: --token or STREAMS_API_TOKEN (the workers' API token)", err=True)
        raise typer.Exit(2)
    path = str(directory.resolve()) if directory.exists() else str(directory)
    failed = False
    for url in worker or [settings.canonical_url()]:
        status, answer = _post(f"{url.rstrip('/')}/admin/model", {"path": path}, token)
        if status == 200:
            typer.echo(f"{url}: {answer['previous']} -> {answer['model_version']}")
        else:
            failed = True
            answered = f"{status} " if status else ""
            typer.echo(f"{url}: {answered}{answer.get('error', answer)}", err=True)
    if failed:
        raise typer.Exit(1)


def _post(url: str, body: dict[str, str], token: str) -> tuple[int, dict[str, object]]:
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
    )
    try:
        with urllib.request.urlopen(request, timeout=SWAP_TIMEOUT_SECONDS) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as exc:
        try:
            return exc.code, json.loads(exc.read() or b"{}")
        except ValueError:
            return exc.code, {"error": exc.reason}
    except OSError as exc:
        return 0, {"error": f"no answer: {exc}"}
