"""`streams demo`: a worker on the local broker, generated traffic replayed live, one shopper followed."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Mapping
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
        **demo_access_env(os.environ),
    }
    return subprocess.Popen(
        [sys.executable, "-m", "streams", "worker"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def demo_access_env(env: Mapping[str, str]) -> dict[str, str]:
    """The demo's own worker lets the dashboard act as any shopper (STREAMS_DEMO): it needs a write
    key and a shopper secret, fresh for this run unless set already."""
    return {
        "STREAMS_DEMO": "true",
        "STREAMS_COLLECTOR_KEYS": env.get("STREAMS_COLLECTOR_KEYS") or f"demo-{secrets.token_urlsafe(12)}",
        "STREAMS_SHOPPER_SECRET": env.get("STREAMS_SHOPPER_SECRET") or secrets.token_urlsafe(24),
    }


def _describe(rec: dict[str, Any]) -> str:
    top = ", ".join(i["item_id"] for i in rec["items"][:4])
    fallback = rec.get("provenance", {}).get("fallback")
    return (
        f"after {rec['cause_event_id']}: {top} ...  intent={rec['purchase_intent']:.2f}"
        f"{'  (trending)' if fallback else ''}"
    )


@app.command()
def demo(
    users: Annotated[int, typer.Option(help="Shoppers in the generated traffic")] = 200,
    items: Annotated[int, typer.Option(help="Catalogue size (the shipped model knows 2,000 items)")] = 2000,
    events: Annotated[int, typer.Option(help="Click and order events to play")] = 6000,
    rate: Annotated[float, typer.Option(help="Events per second")] = 300.0,
    seed: Annotated[int | None, typer.Option(help="Traffic seed (default: new traffic each run)")] = None,
    stay: Annotated[bool, typer.Option(help="Keep the worker (and page) up until Ctrl-C")] = True,
) -> None:
    """Run the pipeline locally and watch one shopper's recommendations change as the traffic plays."""
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
    typer.echo(
        f"playing {events} generated events (after {items} catalog items) at {rate:g}/s;"
        f" following shopper {shopper}"
    )
    typer.echo(f"  dashboard:  {base}/demo?user={shopper}")
    if _get(f"{base}/demo/session?user={shopper}") is None:
        typer.echo("              (read-only: the worker already running has no STREAMS_DEMO=true)")
    typer.echo(f"  latest:     {base}/users/{shopper}/recommendations    health: {base}/healthz")
    player = threading.Thread(target=replay_log, args=(records, settings), kwargs={"rate": rate}, daemon=True)
    player.start()
    seen = None
    while player.is_alive() or seen is None:
        rec = _get(f"{base}/users/{shopper}/recommendations")
        if rec is not None and rec.get("rec_id") and rec != seen:
            typer.echo(f"  {time.strftime('%X')}  {shopper} {_describe(rec)}")
            seen = rec
        time.sleep(1.0)
        if not player.is_alive() and seen is None:
            break
    time.sleep(2)
    health = _get(f"{base}/healthz") or {}
    typer.echo(
        f"done: {health.get('events')} events, {health.get('recommendations')} recommendations, "
        f"{health.get('triggers')} promotion triggers, {health.get('dead_letters')} dead letters "
        f"(model {health.get('model_version')})"
    )
    typer.echo(f"inspect a shopper's state: streams state {shopper}")
    if worker is None:
        return
    try:
        if stay:
            typer.echo(f"the worker keeps serving {base}/demo?user={shopper} - Ctrl-C to stop")
            worker.wait()
    except KeyboardInterrupt:
        pass
    finally:
        worker.terminate()
        worker.wait(30)
