"""`streams kafka up|down|status`: the local single-node broker (see streams/kafka_local.py)."""

from __future__ import annotations

import logging
import time
from typing import Annotated

import typer

from streams.cli import app
from streams.kafka_local import LocalKafka, LocalKafkaError

kafka_app = typer.Typer(
    no_args_is_help=True,
    help="Local single-node Kafka 3.9 broker (KRaft) built from Maven Central jars, state in .cache/kafka.",
)
app.add_typer(kafka_app, name="kafka")


def _local_kafka() -> LocalKafka:
    # While the broker boots, kafka-python logs every refused connection as an error; those are
    # expected here, and real failures are reported by LocalKafka with the broker's own log.
    logging.getLogger("kafka").setLevel(logging.CRITICAL)
    return LocalKafka(progress=lambda message: typer.echo(message, err=True))


@kafka_app.command()
def up(
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the broker to answer.")] = 120.0,
) -> None:
    """Start the broker (fetching jars and formatting storage on first use); no-op if one answers."""
    kafka = _local_kafka()
    started = time.monotonic()
    try:
        status = kafka.up(timeout=timeout)
    except LocalKafkaError as exc:
        typer.echo(f"kafka up failed: {exc}", err=True)
        raise typer.Exit(1) from None
    if status.external:
        typer.echo(
            f"KAFKA_BOOTSTRAP={status.bootstrap} answers (cluster {status.cluster_id}); nothing started."
        )
    elif status.started:
        elapsed = time.monotonic() - started
        typer.echo(
            f"Kafka up at {status.bootstrap} (pid {status.pid}, cluster {status.cluster_id}), {elapsed:.0f}s."
        )
    else:
        owner = f"pid {status.pid}" if status.pid else "not started by this checkout"
        typer.echo(f"Kafka already up at {status.bootstrap} ({owner}, cluster {status.cluster_id}).")


@kafka_app.command()
def down(
    timeout: Annotated[float, typer.Option(help="Seconds to wait after SIGTERM before SIGKILL.")] = 30.0,
) -> None:
    """Stop the broker started by `streams kafka up` (never one it did not start)."""
    kafka = _local_kafka()
    if kafka.config.external_bootstrap is not None:
        typer.echo(f"KAFKA_BOOTSTRAP={kafka.config.external_bootstrap} is not managed here; nothing stopped.")
        return
    try:
        stopped = kafka.down(timeout=timeout)
    except LocalKafkaError as exc:
        typer.echo(f"kafka down failed: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo("Kafka stopped." if stopped else "Kafka was not running (no live pid file); nothing stopped.")


@kafka_app.command()
def status() -> None:
    """Report whether a broker answers at the bootstrap address; exit status 1 if not."""
    state = _local_kafka().status()
    if state.external:
        where = "external, from KAFKA_BOOTSTRAP"
    else:
        where = f"pid {state.pid}" if state.pid else "no pid of ours"
    if state.up:
        typer.echo(f"up: {state.bootstrap} ({where}, cluster {state.cluster_id})")
    else:
        typer.echo(f"down: nothing answers at {state.bootstrap} ({where})")
        raise typer.Exit(1)
