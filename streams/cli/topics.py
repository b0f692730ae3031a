"""`streams topics create`."""

from __future__ import annotations

from typing import Annotated

import typer

from streams.cli import app
from streams.cli.options import Bootstrap, Prefix, settings_from
from streams.kafka.topics import ensure_topics

topics_app = typer.Typer(help="Manage the system's topics.", no_args_is_help=True)
app.add_typer(topics_app, name="topics")


@topics_app.command("create")
def create(
    partitions: Annotated[
        int | None, typer.Option(help="Partitions per topic [env STREAMS_PARTITIONS, 8]")
    ] = None,
    replication: Annotated[
        int | None, typer.Option(help="Replication factor [env STREAMS_REPLICATION, 1]")
    ] = None,
    bootstrap: Bootstrap = None,
    topic_prefix: Prefix = None,
) -> None:
    """Create clicks, orders, catalog (compacted), recommendations, promotion-triggers,
    audience-segments, dead-letters, demand, demand-forecasts, and the worker's table changelogs
    (compacted; named after STREAMS_APP_ID). Existing topics are left as they are."""
    settings = settings_from(bootstrap, topic_prefix, partitions=partitions, replication=replication)
    for report in ensure_topics(settings):
        state = "created" if report.created else "exists"
        typer.echo(f"{report.name:<32} {state:<8} partitions={report.partitions}")
