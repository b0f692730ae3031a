"""`streams deliver`: promotion triggers and segment changes to a marketing tool over HTTPS."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer

from streams.cli import app
from streams.cli.options import Bootstrap, Prefix, settings_from
from streams.deliver.config import FORMATS, SOURCES

DeliveryFormat = StrEnum("DeliveryFormat", {name: name for name in FORMATS})  # type: ignore[misc]
Source = StrEnum("Source", {name: name for name in SOURCES})  # type: ignore[misc]


@app.command()
def deliver(
    format: Annotated[DeliveryFormat, typer.Option("--format", help="what the receiver speaks")] = (
        DeliveryFormat.webhook
    ),
    source: Annotated[
        list[Source] | None, typer.Option("--source", help="topic(s) to deliver [promotion-triggers]")
    ] = None,
    group: Annotated[str | None, typer.Option(help="consumer group [<app id>-deliver-<format>]")] = None,
    batch_size: Annotated[int, typer.Option(min=1, help="outputs per batch and offset commit")] = 100,
    rate: Annotated[float, typer.Option(min=0.001, help="most requests per second")] = 10.0,
    burst: Annotated[int, typer.Option(min=1, help="requests allowed at once above the rate")] = 10,
    timeout: Annotated[float, typer.Option(min=0.1, help="seconds to wait for an answer")] = 10.0,
    backoff_max: Annotated[float, typer.Option(min=0.1, help="longest wait between retries, s")] = 60.0,
    backfill: Annotated[
        bool, typer.Option("--backfill", help="deliver replay: true outputs too, marked as a backfill")
    ] = False,
    metrics_port: Annotated[int | None, typer.Option(help="serve /metrics on 127.0.0.1:PORT")] = None,
    until_idle: Annotated[
        float | None, typer.Option(help="stop after this many seconds without a message")
    ] = None,
    loglevel: Annotated[str, typer.Option(help="Log level")] = "info",
    bootstrap: Bootstrap = None,
    topic_prefix: Prefix = None,
) -> None:
    """Deliver to STREAMS_DELIVER_URL (secrets: STREAMS_DELIVER_SECRET, STREAMS_DELIVER_API_KEY;
    STREAMS_DELIVER_CA_FILE to trust a private CA), committing input offsets only once delivered."""
    import logging
    import signal
    import threading

    from streams.deliver.config import DeliverConfig
    from streams.deliver.connector import Connector
    from streams.redaction import redact_secrets

    settings = settings_from(bootstrap, topic_prefix)
    try:
        config = DeliverConfig.from_env(
            format=format.value,
            sources=tuple(s.value for s in source) if source else None,
            group_id=group or f"{settings.app_id}-deliver-{format.value}",
            batch_size=batch_size,
            requests_per_second=rate,
            burst=burst,
            timeout_seconds=timeout,
            backoff_max_seconds=backoff_max,
            backfill=backfill,
            metrics_port=metrics_port,
        )
    except ValueError as exc:
        typer.echo(f"deliver: {exc}", err=True)
        raise typer.Exit(2) from None
    redact_secrets(config.secrets())
    logging.basicConfig(level=loglevel.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    stopping = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stopping.set())
    connector = Connector(settings, config, stopping=stopping)
    if config.metrics_port is not None:
        connector.metrics.serve(config.metrics_host, config.metrics_port)
    summary = connector.run(until_idle)
    typer.echo(
        f"{summary.delivered} delivered, {summary.dead_lettered} refused (dead-letters), "
        f"{summary.skipped_replay} replayed not delivered, {summary.bad_input} bad input"
    )
