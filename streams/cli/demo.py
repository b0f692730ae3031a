"""`streams demo`: a worker on the local broker, generated traffic replayed live, one shopper followed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Annotated, Any

import typer

from streams.cli import app
from streams.config import Settings


def _get(url: str) -> dict[str, Any] | None:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return json.load(response)
    except (OSError, ValueError):
        return None


def _start_worker(settings: Settings, log_path: Path) -> subprocess.Popen[bytes]:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log = open(log_path, "ab")  # noqa: SIM115 - the child writes to it for its whole life
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP": settings.bootstrap,
        "STREAMS_APP_ID": settings.app_id,
        "STREAMS_WEB_PORT": str(settings.web_port),
        "STREAMS_TOPIC_PREFIX": settings.topic_prefix,
    }
    return subprocess.Popen(
        [sys.executable, "-m", "streams", "worker"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def _describe(state: dict[str, Any]) -> str:
    last = state["recent"][-1] if state["recent"] else {}
    cart = {item: line["quantity"] for item, line in state["cart"].items()}
    events = sum(state["counters"].values())
    touched = f"{last.get('kind', '-')}:{last.get('item_id') or '-'}"
    return f"events={events:<4} last={touched}  cart={cart}  bought={len(state['purchases'])}"


@app.command()
def demo(
    users: Annotated[int, typer.Option(help="Shoppers in the generated traffic")] = 200,
    items: Annotated[int, typer.Option(help="Catalogue size")] = 1000,
    events: Annotated[int, typer.Option(help="Click and order events to play")] = 6000,
    rate: Annotated[float, typer.Option(help="Events per second")] = 300.0,
    seed: Annotated[int | None, typer.Option(help="Traffic seed (default: new traffic each run)")] = None,
    keep: Annotated[bool, typer.Option(help="Leave the worker running afterwards")] = False,
) -> None:
    """Run the pipeline locally and watch one shopper's state change as the traffic plays."""
    from streams.generate import TrafficConfig, generate_traffic
    from streams.kafka.produce import replay_log
    from streams.kafka.topics import ensure_topics

    settings = Settings.from_env()
    ensure_topics(settings)
    base = f"http://127.0.0.1:{settings.web_port}"
    worker = None
    if _get(f"{base}/healthz") is None:
        log_path = Path(".cache/demo/worker.log")
        worker = _start_worker(settings, log_path)
        typer.echo(f"worker starting (log: {log_path}) ...")
        deadline = time.monotonic() + 120
        while _get(f"{base}/healthz") is None:
            if worker.poll() is not None or time.monotonic() > deadline:
                typer.echo(f"worker did not come up; see {log_path}", err=True)
                raise typer.Exit(1)
            time.sleep(0.5)
    seed = int(time.time()) if seed is None else seed
    records = list(generate_traffic(TrafficConfig(users=users, items=items, events=events, seed=seed)))
    activity = Counter(r.key for r in records if r.topic == "clicks")
    shopper = activity.most_common(1)[0][0]
    typer.echo(f"playing {len(records)} generated events at {rate:g}/s; following shopper {shopper}")
    typer.echo(f"  state over HTTP: {base}/users/{shopper}/state    health: {base}/healthz")
    player = threading.Thread(target=replay_log, args=(records, settings), kwargs={"rate": rate}, daemon=True)
    player.start()
    seen = None
    while player.is_alive() or seen is None:
        state = _get(f"{base}/users/{shopper}/state")
        if state is not None and state.get("user_id") and state != seen:
            typer.echo(f"  {time.strftime('%X')}  {shopper}: {_describe(state)}")
            seen = state
        time.sleep(1.0)
        if not player.is_alive() and seen is None:
            break
    time.sleep(2)
    health = _get(f"{base}/healthz") or {}
    typer.echo(
        f"done: worker saw {health.get('events')} events, applied {health.get('applied')}, "
        f"dead letters {health.get('dead_letters')}"
    )
    typer.echo(f"inspect any shopper: streams state {shopper}")
    if worker is not None and not keep:
        worker.terminate()
        worker.wait(30)
